"""The etsim dashboard (``etsim dashboard``): ``dashboard.app.create_app`` builds the Dash
app, ``dashboard.app.run`` serves it on 127.0.0.1:8050."""

"""The dashboard's pages: one module per page (Dash pages)."""

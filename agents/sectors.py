"""The sector library: default data for every sector a scenario can cover.

Sectors are data, not subclasses. A scenario's ``[sectors.NAME]`` table is merged over
the defaults here, so a scenario only states what it changes. Every number cites its
source in ``docs/calibration.md``; numbers marked UNCONFIRMED could not be checked
against an official text and are kept as parameters.

Firm counts are for the full national market (about 3,700 entities); a scenario's
``scale`` multiplies them.
"""

from __future__ import annotations

from typing import Any

# Abatement options: intensity_reduction is the fractional cut of the firm's direct
# intensity, cost_per_t the cost per tonne of CO2 abated (CNY/t, annualised capital plus
# operating cost), lead_time_years the delay between the decision and the effect.
# cost_range is the documented uncertainty band; firms draw their own cost inside it.
# All costs are UNCONFIRMED (calibration sheet section 6): treat them as uncertainties.

SECTOR_LIBRARY: dict[str, dict[str, Any]] = {
    "power": {
        "label": "Power (coal and gas)",
        "enabled": True,
        "entry_year": 2021,  # in the national market since 2021 (calibration 2)
        "firms": 2200,  # about 2,200 entities (calibration 2)
        "unit": "MWh",
        # 5.1 Gt / 2,200 entities / about 0.80 tCO2/MWh = 2.9 TWh per entity
        "output_per_firm": 2.9e6,
        "output_dispersion": 0.6,
        "benchmark": 0.7822,  # coal above 300 MW, 2024 (UNCONFIRMED against MEE text)
        "benchmark_base_year": 2024,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.05,
        "indirect_intensity": 0.0,
        "product_price": 370.0,  # on-grid coal benchmark tariff about 0.37 CNY/kWh; thin margins; short-run demand for power is inelastic, UNCONFIRMED
        "margin_share": 0.06,  # UNCONFIRMED
        "demand_elasticity": 0.1,  # UNCONFIRMED
        "demand_growth": 0.015,  # thermal generation growth, UNCONFIRMED
        "output_shock_sd": 0.04,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.03,  # bank carried from 2021-2023, UNCONFIRMED
        "abatement": [
            {"name": "efficiency_retrofit", "intensity_reduction": 0.02, "cost_per_t": 40.0,
             "cost_range": [20.0, 80.0], "lead_time_years": 1},
            {"name": "biomass_cofiring", "intensity_reduction": 0.05, "cost_per_t": 160.0,
             "cost_range": [100.0, 250.0], "lead_time_years": 1},
            {"name": "flexible_operation_upgrade", "intensity_reduction": 0.03,
             "cost_per_t": 90.0, "cost_range": [50.0, 150.0], "lead_time_years": 1},
            {"name": "ccus", "intensity_reduction": 0.5, "cost_per_t": 450.0,
             "cost_range": [300.0, 700.0], "lead_time_years": 4},
        ],
    },
    "steel": {
        "label": "Steel (BF-BOF)",
        "enabled": True,
        "entry_year": 2024,  # joins in 2024 (MEE allocation plan)
        "firms": 680,  # about 18% of 3,770 entities (calibration 1, low reliability)
        "unit": "t crude steel",
        # 1.005 Gt crude steel x 90% BF-BOF / 680 entities
        "output_per_firm": 1.33e6,
        "output_dispersion": 0.7,
        "benchmark": 2.0,  # BF-BOF about 2.0 tCO2/t (transitionasia.org), UNCONFIRMED
        "benchmark_base_year": 2025,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.08,
        "indirect_intensity": 0.15,  # purchased electricity, UNCONFIRMED
        "product_price": 3800.0,  # crude steel about 3,800 CNY/t in 2024, UNCONFIRMED
        "margin_share": 0.05,  # UNCONFIRMED
        "demand_elasticity": 0.3,  # UNCONFIRMED
        "demand_growth": -0.01,
        "output_shock_sd": 0.04,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "waste_heat_efficiency", "intensity_reduction": 0.04, "cost_per_t": 50.0,
             "cost_range": [20.0, 100.0], "lead_time_years": 1},
            {"name": "pci_fuel_switch", "intensity_reduction": 0.05, "cost_per_t": 150.0,
             "cost_range": [80.0, 250.0], "lead_time_years": 1},
            {"name": "top_gas_recycling", "intensity_reduction": 0.1, "cost_per_t": 350.0,
             "cost_range": [200.0, 500.0], "lead_time_years": 3},
            # about US$75-100 per tCO2 (calibration 6), at 7.2 CNY/US$
            {"name": "hydrogen_dri", "intensity_reduction": 0.3, "cost_per_t": 630.0,
             "cost_range": [540.0, 720.0], "lead_time_years": 5},
            {"name": "ccus", "intensity_reduction": 0.5, "cost_per_t": 800.0,
             "cost_range": [500.0, 1200.0], "lead_time_years": 5},
        ],
    },
    "cement": {
        "label": "Cement clinker",
        "enabled": True,
        "entry_year": 2024,
        "firms": 570,  # about 15% of 3,770 entities (calibration 1, low reliability)
        "unit": "t clinker",
        # 1.79 Gt clinker capacity x 75% utilisation / 570 entities, UNCONFIRMED
        "output_per_firm": 2.35e6,
        "output_dispersion": 0.6,
        "benchmark": 0.8534,  # 2017 NDRC draft benchmark (ets-china.org)
        "benchmark_base_year": 2025,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.05,
        "indirect_intensity": 0.05,  # UNCONFIRMED
        "product_price": 300.0,  # clinker about 300 CNY/t, UNCONFIRMED
        "margin_share": 0.1,  # UNCONFIRMED
        "demand_elasticity": 0.3,  # UNCONFIRMED
        "demand_growth": -0.02,
        "output_shock_sd": 0.04,
        "sector_shock_sd": 0.03,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "kiln_efficiency", "intensity_reduction": 0.03, "cost_per_t": 40.0,
             "cost_range": [20.0, 80.0], "lead_time_years": 1},
            {"name": "alternative_fuels", "intensity_reduction": 0.06, "cost_per_t": 120.0,
             "cost_range": [60.0, 200.0], "lead_time_years": 1},
            {"name": "raw_material_substitution", "intensity_reduction": 0.05,
             "cost_per_t": 220.0, "cost_range": [120.0, 350.0], "lead_time_years": 2},
            # Anhui Conch pilot: 50,000 t/yr for RMB 50 million (calibration 6)
            {"name": "carbon_capture", "intensity_reduction": 0.4, "cost_per_t": 600.0,
             "cost_range": [400.0, 1000.0], "lead_time_years": 5},
        ],
    },
    "aluminium": {
        "label": "Aluminium electrolysis",
        "enabled": True,
        "entry_year": 2024,
        "firms": 190,  # about 5% of 3,770 entities (calibration 1, low reliability)
        "unit": "t aluminium",
        "output_per_firm": 2.26e5,  # 43 Mt primary aluminium / 190 entities
        "output_dispersion": 0.5,
        "benchmark": 1.57,  # direct only: anode 1.424 + PFC 0.145 (shanshuisiyin.cn)
        "benchmark_base_year": 2025,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.06,
        # about 13,500 kWh/t at about 0.58 kgCO2/kWh: excluded from scope by default
        "indirect_intensity": 7.8,
        "product_price": 19000.0,  # primary aluminium about 19,000 CNY/t in 2024, UNCONFIRMED
        "margin_share": 0.08,  # UNCONFIRMED
        "demand_elasticity": 0.3,  # UNCONFIRMED
        "demand_growth": 0.0,  # output near the 45 Mt cap
        "output_shock_sd": 0.02,
        "sector_shock_sd": 0.01,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "anode_effect_control", "intensity_reduction": 0.08, "cost_per_t": 30.0,
             "cost_range": [10.0, 60.0], "lead_time_years": 1},
            {"name": "anode_efficiency", "intensity_reduction": 0.04, "cost_per_t": 150.0,
             "cost_range": [80.0, 250.0], "lead_time_years": 1},
            {"name": "inert_anode", "intensity_reduction": 0.6, "cost_per_t": 700.0,
             "cost_range": [400.0, 1200.0], "lead_time_years": 8},
        ],
    },
    # Expansion sectors: being prepared to join (calibration 5). Their sizes and
    # intensities are not in the calibration sheet: every number is UNCONFIRMED.
    "chemicals": {
        "label": "Chemicals",
        "enabled": False,
        "entry_year": 2027,
        "firms": 400,
        "unit": "t product",
        "output_per_firm": 6.0e5,
        "output_dispersion": 0.8,
        "benchmark": 1.6,
        "benchmark_base_year": 2027,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.1,
        "indirect_intensity": 0.3,
        "product_price": 3000.0,  # UNCONFIRMED
        "margin_share": 0.1,  # UNCONFIRMED
        "demand_elasticity": 0.3,  # UNCONFIRMED
        "demand_growth": 0.02,
        "output_shock_sd": 0.04,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "process_efficiency", "intensity_reduction": 0.05, "cost_per_t": 60.0,
             "cost_range": [30.0, 120.0], "lead_time_years": 1},
            {"name": "electrified_heat", "intensity_reduction": 0.15, "cost_per_t": 300.0,
             "cost_range": [150.0, 500.0], "lead_time_years": 3},
        ],
    },
    "petrochemicals": {
        "label": "Petrochemicals",
        "enabled": False,
        "entry_year": 2027,
        "firms": 150,
        "unit": "t product",
        "output_per_firm": 2.0e6,
        "output_dispersion": 0.7,
        "benchmark": 0.6,
        "benchmark_base_year": 2027,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.08,
        "indirect_intensity": 0.1,
        "product_price": 5000.0,  # UNCONFIRMED
        "margin_share": 0.08,  # UNCONFIRMED
        "demand_elasticity": 0.2,  # UNCONFIRMED
        "demand_growth": 0.01,
        "output_shock_sd": 0.03,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "furnace_efficiency", "intensity_reduction": 0.05, "cost_per_t": 70.0,
             "cost_range": [30.0, 120.0], "lead_time_years": 1},
            {"name": "ccus", "intensity_reduction": 0.3, "cost_per_t": 500.0,
             "cost_range": [300.0, 800.0], "lead_time_years": 4},
        ],
    },
    "aviation": {
        "label": "Aviation",
        "enabled": False,
        "entry_year": 2027,
        "firms": 50,
        "unit": "t fuel",
        "output_per_firm": 7.0e5,
        "output_dispersion": 1.0,
        "benchmark": 3.15,  # tCO2 per t jet fuel burned
        "benchmark_base_year": 2027,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.03,
        "indirect_intensity": 0.0,
        "product_price": 6000.0,  # UNCONFIRMED
        "margin_share": 0.05,  # UNCONFIRMED
        "demand_elasticity": 0.5,  # UNCONFIRMED
        "demand_growth": 0.05,
        "output_shock_sd": 0.05,
        "sector_shock_sd": 0.03,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "fleet_efficiency", "intensity_reduction": 0.03, "cost_per_t": 150.0,
             "cost_range": [80.0, 300.0], "lead_time_years": 2},
            {"name": "sustainable_aviation_fuel", "intensity_reduction": 0.1,
             "cost_per_t": 900.0, "cost_range": [600.0, 1500.0], "lead_time_years": 2},
        ],
    },
    "paper": {
        "label": "Paper-making",
        "enabled": False,
        "entry_year": 2027,
        "firms": 300,
        "unit": "t paper",
        "output_per_firm": 3.0e5,
        "output_dispersion": 0.8,
        "benchmark": 0.6,
        "benchmark_base_year": 2027,
        "intensity_ratio_mean": 1.0,
        "intensity_ratio_sd": 0.1,
        "indirect_intensity": 0.3,
        "product_price": 5000.0,  # UNCONFIRMED
        "margin_share": 0.08,  # UNCONFIRMED
        "demand_elasticity": 0.3,  # UNCONFIRMED
        "demand_growth": 0.01,
        "output_shock_sd": 0.04,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.0,
        "abatement": [
            {"name": "biomass_boiler", "intensity_reduction": 0.2, "cost_per_t": 120.0,
             "cost_range": [60.0, 200.0], "lead_time_years": 2},
            {"name": "heat_recovery", "intensity_reduction": 0.05, "cost_per_t": 50.0,
             "cost_range": [20.0, 100.0], "lead_time_years": 1},
        ],
    },
}

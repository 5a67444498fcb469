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

# "calibration N" below = section N of the calibration sheet, docs/calibration-facts.md.
#
# Abatement options: intensity_reduction is the fractional cut of the firm's direct
# intensity; capital_cost the investment per tonne of yearly abatement capacity (CNY per
# tCO2/yr), spent at the decision; operating_cost the running cost per tonne abated, net
# of fuel savings (CNY/t); lifetime_years how long it works; lead_time_years the delay
# between the decision and the effect. Each *_range is the documented uncertainty band:
# firms draw their own value inside it. The levelised cost per tonne is derived (capital
# recovery at investment.hurdle_rate plus operating cost); the values below were set so
# that at 8% it stays near the earlier cost-per-tonne table. All numbers are UNCONFIRMED
# (calibration 6; docs/calibration.md gives the reasoning of each).
#
# provinces: shares of a sector's firms by province, for the peer network (firms learn
# from firms of their own sector and province). Taken as the provinces' approximate
# shares of national output (2023), all UNCONFIRMED; the rest is one group, "other".

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
        # on-grid coal benchmark tariff about 0.37 CNY/kWh; thin margins; short-run demand
        # for power is inelastic, UNCONFIRMED
        "product_price": 370.0,
        "margin_share": 0.06,  # UNCONFIRMED
        "demand_elasticity": 0.1,  # UNCONFIRMED
        "demand_growth": 0.015,  # thermal generation growth, UNCONFIRMED
        "output_shock_sd": 0.04,
        "sector_shock_sd": 0.02,
        "initial_bank_share": 0.03,  # bank carried from 2021-2023, UNCONFIRMED
        "provinces": {"Shandong": 0.09, "Inner Mongolia": 0.08, "Jiangsu": 0.08, "Guangdong": 0.07,
                      "Shanxi": 0.06, "Xinjiang": 0.06, "Henan": 0.05, "Hebei": 0.05,
                      "Anhui": 0.05, "Zhejiang": 0.05, "other": 0.36},
        "abatement": [
            {"name": "efficiency_retrofit",
             "intensity_reduction": 0.02, "intensity_reduction_range": [0.01, 0.03],
             "capital_cost": 200.0, "capital_cost_range": [100.0, 400.0],
             "operating_cost": 15.0, "operating_cost_range": [5.0, 30.0],
             "lifetime_years": 15, "lead_time_years": 1},
            # opex: the biomass premium over coal
            {"name": "biomass_cofiring",
             "intensity_reduction": 0.05, "intensity_reduction_range": [0.03, 0.1],
             "capital_cost": 300.0, "capital_cost_range": [150.0, 600.0],
             "operating_cost": 130.0, "operating_cost_range": [80.0, 200.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "flexible_operation_upgrade",
             "intensity_reduction": 0.03, "intensity_reduction_range": [0.02, 0.05],
             "capital_cost": 500.0, "capital_cost_range": [250.0, 900.0],
             "operating_cost": 30.0, "operating_cost_range": [10.0, 50.0],
             "lifetime_years": 15, "lead_time_years": 1},
            # scale reference: Guohua Jinjie, 150,000 t/yr capture at a coal plant (2021)
            {"name": "ccus",
             "intensity_reduction": 0.5, "intensity_reduction_range": [0.3, 0.7],
             "capital_cost": 2000.0, "capital_cost_range": [1500.0, 3500.0],
             "operating_cost": 250.0, "operating_cost_range": [150.0, 400.0],
             "lifetime_years": 25, "lead_time_years": 4},
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
        "provinces": {"Hebei": 0.2, "Jiangsu": 0.12, "Shandong": 0.08, "Liaoning": 0.07,
                      "Shanxi": 0.06, "Anhui": 0.04, "Guangxi": 0.04, "Hubei": 0.04,
                      "other": 0.35},
        "abatement": [
            {"name": "waste_heat_efficiency",
             "intensity_reduction": 0.04, "intensity_reduction_range": [0.02, 0.06],
             "capital_cost": 300.0, "capital_cost_range": [150.0, 600.0],
             "operating_cost": 15.0, "operating_cost_range": [5.0, 30.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "pci_fuel_switch",
             "intensity_reduction": 0.05, "intensity_reduction_range": [0.03, 0.08],
             "capital_cost": 200.0, "capital_cost_range": [100.0, 400.0],
             "operating_cost": 125.0, "operating_cost_range": [70.0, 200.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "top_gas_recycling",
             "intensity_reduction": 0.1, "intensity_reduction_range": [0.05, 0.15],
             "capital_cost": 1500.0, "capital_cost_range": [1000.0, 2500.0],
             "operating_cost": 200.0, "operating_cost_range": [120.0, 300.0],
             "lifetime_years": 20, "lead_time_years": 3},
            # about US$75-100 per tCO2 levelised (calibration 6): 540-720 CNY/t at 7.2 CNY/US$
            {"name": "hydrogen_dri",
             "intensity_reduction": 0.3, "intensity_reduction_range": [0.2, 0.4],
             "capital_cost": 2000.0, "capital_cost_range": [1500.0, 2500.0],
             "operating_cost": 450.0, "operating_cost_range": [400.0, 500.0],
             "lifetime_years": 25, "lead_time_years": 5},
            {"name": "ccus",
             "intensity_reduction": 0.5, "intensity_reduction_range": [0.3, 0.6],
             "capital_cost": 2500.0, "capital_cost_range": [1500.0, 4000.0],
             "operating_cost": 550.0, "operating_cost_range": [350.0, 800.0],
             "lifetime_years": 25, "lead_time_years": 5},
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
        "provinces": {"Anhui": 0.08, "Guangdong": 0.07, "Shandong": 0.06, "Jiangsu": 0.06,
                      "Sichuan": 0.06, "Guangxi": 0.05, "Henan": 0.05, "Hubei": 0.05,
                      "Yunnan": 0.05, "other": 0.47},
        "abatement": [
            {"name": "kiln_efficiency",
             "intensity_reduction": 0.03, "intensity_reduction_range": [0.02, 0.05],
             "capital_cost": 250.0, "capital_cost_range": [100.0, 500.0],
             "operating_cost": 10.0, "operating_cost_range": [5.0, 25.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "alternative_fuels",
             "intensity_reduction": 0.06, "intensity_reduction_range": [0.03, 0.1],
             "capital_cost": 400.0, "capital_cost_range": [200.0, 800.0],
             "operating_cost": 75.0, "operating_cost_range": [40.0, 120.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "raw_material_substitution",
             "intensity_reduction": 0.05, "intensity_reduction_range": [0.03, 0.08],
             "capital_cost": 600.0, "capital_cost_range": [300.0, 1000.0],
             "operating_cost": 160.0, "operating_cost_range": [90.0, 250.0],
             "lifetime_years": 20, "lead_time_years": 2},
            # Anhui Conch pilot: 50,000 t/yr for RMB 50 million = 1,000 CNY per t/yr (calibration 6)
            {"name": "carbon_capture",
             "intensity_reduction": 0.4, "intensity_reduction_range": [0.3, 0.5],
             "capital_cost": 1500.0, "capital_cost_range": [1000.0, 2500.0],
             "operating_cost": 450.0, "operating_cost_range": [300.0, 750.0],
             "lifetime_years": 20, "lead_time_years": 5},
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
        "provinces": {"Shandong": 0.17, "Xinjiang": 0.15, "Inner Mongolia": 0.15, "Yunnan": 0.12,
                      "Guangxi": 0.06, "Qinghai": 0.06, "Henan": 0.04, "Guizhou": 0.04,
                      "Gansu": 0.04, "other": 0.17},
        "abatement": [
            # PFCs are about 0.145 of 1.57 t/t: at most about 0.09
            {"name": "anode_effect_control",
             "intensity_reduction": 0.08, "intensity_reduction_range": [0.05, 0.09],
             "capital_cost": 150.0, "capital_cost_range": [50.0, 350.0],
             "operating_cost": 8.0, "operating_cost_range": [3.0, 15.0],
             "lifetime_years": 10, "lead_time_years": 1},
            {"name": "anode_efficiency",
             "intensity_reduction": 0.04, "intensity_reduction_range": [0.02, 0.06],
             "capital_cost": 400.0, "capital_cost_range": [200.0, 700.0],
             "operating_cost": 90.0, "operating_cost_range": [50.0, 150.0],
             "lifetime_years": 10, "lead_time_years": 1},
            {"name": "inert_anode",
             "intensity_reduction": 0.6, "intensity_reduction_range": [0.4, 0.8],
             "capital_cost": 4000.0, "capital_cost_range": [2500.0, 7000.0],
             "operating_cost": 325.0, "operating_cost_range": [150.0, 500.0],
             "lifetime_years": 25, "lead_time_years": 8},
        ],
    },
    # Expansion sectors: being prepared to join (calibration 5). Their sizes and
    # intensities are not in the calibration sheet (docs/calibration-facts.md): every
    # number is UNCONFIRMED.
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
            {"name": "process_efficiency",
             "intensity_reduction": 0.05, "intensity_reduction_range": [0.03, 0.08],
             "capital_cost": 300.0, "capital_cost_range": [150.0, 600.0],
             "operating_cost": 25.0, "operating_cost_range": [10.0, 50.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "electrified_heat",
             "intensity_reduction": 0.15, "intensity_reduction_range": [0.1, 0.25],
             "capital_cost": 1200.0, "capital_cost_range": [600.0, 2000.0],
             "operating_cost": 180.0, "operating_cost_range": [90.0, 300.0],
             "lifetime_years": 20, "lead_time_years": 3},
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
            {"name": "furnace_efficiency",
             "intensity_reduction": 0.05, "intensity_reduction_range": [0.03, 0.08],
             "capital_cost": 350.0, "capital_cost_range": [150.0, 600.0],
             "operating_cost": 30.0, "operating_cost_range": [10.0, 50.0],
             "lifetime_years": 15, "lead_time_years": 1},
            {"name": "ccus",
             "intensity_reduction": 0.3, "intensity_reduction_range": [0.2, 0.4],
             "capital_cost": 2000.0, "capital_cost_range": [1200.0, 3000.0],
             "operating_cost": 310.0, "operating_cost_range": [190.0, 520.0],
             "lifetime_years": 25, "lead_time_years": 4},
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
            {"name": "fleet_efficiency",
             "intensity_reduction": 0.03, "intensity_reduction_range": [0.02, 0.05],
             "capital_cost": 1000.0, "capital_cost_range": [500.0, 2000.0],
             "operating_cost": 50.0, "operating_cost_range": [30.0, 100.0],
             "lifetime_years": 20, "lead_time_years": 2},
            # a fuel purchase: no capital
            {"name": "sustainable_aviation_fuel",
             "intensity_reduction": 0.1, "intensity_reduction_range": [0.05, 0.2],
             "capital_cost": 0.0,
             "operating_cost": 900.0, "operating_cost_range": [600.0, 1500.0],
             "lifetime_years": 10, "lead_time_years": 2},
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
            {"name": "biomass_boiler",
             "intensity_reduction": 0.2, "intensity_reduction_range": [0.1, 0.3],
             "capital_cost": 600.0, "capital_cost_range": [300.0, 1000.0],
             "operating_cost": 60.0, "operating_cost_range": [30.0, 100.0],
             "lifetime_years": 20, "lead_time_years": 2},
            {"name": "heat_recovery",
             "intensity_reduction": 0.05, "intensity_reduction_range": [0.03, 0.08],
             "capital_cost": 300.0, "capital_cost_range": [150.0, 600.0],
             "operating_cost": 15.0, "operating_cost_range": [5.0, 30.0],
             "lifetime_years": 15, "lead_time_years": 1},
        ],
    },
}

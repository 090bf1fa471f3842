"""The default list of anticoagulants and antiplatelets, with their hold days per bleeding risk.

From the ASRA 2018 guidelines for interventional spine and pain procedures (Narouze et al.), as
summarised in DOMAIN.md and its research notes. Clinics edit these rows; code reads them. Where
the guidance leaves the decision to the physician and the prescriber ("shared decision") the
list holds 0, and the physician records a patient's own number on their hold. Holds counted in
hours (heparins) are rounded up to whole days, which is what the schedule can express.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: list[dict[str, Any]] = [
    dict(
        code="warfarin",
        name="Warfarin",
        drug_class="vka",
        hold_days_high=5,
        hold_days_intermediate=5,
        hold_days_low=0,
        guidance="5 days and a normal INR for high and intermediate risk; low risk: shared decision.",
    ),
    dict(
        code="apixaban",
        name="Apixaban",
        drug_class="doac",
        hold_days_high=3,
        hold_days_intermediate=3,
        hold_days_low=0,
        guidance="3 days (ASRA 2018).",
    ),
    dict(
        code="rivaroxaban",
        name="Rivaroxaban",
        drug_class="doac",
        hold_days_high=3,
        hold_days_intermediate=3,
        hold_days_low=0,
        guidance="3 days (ASRA 2018).",
    ),
    dict(
        code="edoxaban",
        name="Edoxaban",
        drug_class="doac",
        hold_days_high=3,
        hold_days_intermediate=3,
        hold_days_low=0,
        guidance="3 days (ASRA 2018).",
    ),
    dict(
        code="dabigatran",
        name="Dabigatran",
        drug_class="doac",
        hold_days_high=5,
        hold_days_intermediate=5,
        hold_days_low=0,
        guidance="4 to 5 days; 6 with renal impairment (record 6 on the patient's hold).",
    ),
    dict(
        code="enoxaparin-therapeutic",
        name="Enoxaparin (therapeutic dose)",
        drug_class="heparin",
        hold_days_high=1,
        hold_days_intermediate=1,
        hold_days_low=1,
        guidance="24 hours.",
    ),
    dict(
        code="enoxaparin-prophylactic",
        name="Enoxaparin (prophylactic dose)",
        drug_class="heparin",
        hold_days_high=1,
        hold_days_intermediate=1,
        hold_days_low=1,
        guidance="12 hours, counted as a day.",
    ),
    dict(
        code="clopidogrel",
        name="Clopidogrel",
        drug_class="p2y12",
        hold_days_high=7,
        hold_days_intermediate=7,
        hold_days_low=0,
        guidance="7 days (ASRA 2018).",
    ),
    dict(
        code="prasugrel",
        name="Prasugrel",
        drug_class="p2y12",
        hold_days_high=7,
        hold_days_intermediate=7,
        hold_days_low=0,
        guidance="7 to 10 days.",
    ),
    dict(
        code="ticagrelor",
        name="Ticagrelor",
        drug_class="p2y12",
        hold_days_high=5,
        hold_days_intermediate=5,
        hold_days_low=0,
        guidance="5 days (ASRA 2018).",
    ),
    dict(
        code="cilostazol",
        name="Cilostazol",
        drug_class="antiplatelet",
        hold_days_high=2,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="2 days for high risk.",
    ),
    dict(
        code="aspirin-primary",
        name="Aspirin (primary prevention)",
        drug_class="aspirin",
        hold_days_high=6,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="6 days for high risk; intermediate: shared decision; low: continue.",
    ),
    dict(
        code="aspirin-secondary",
        name="Aspirin (secondary prevention)",
        drug_class="aspirin",
        hold_days_high=0,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="Shared decision with the prescriber; record the agreed days on the patient's hold.",
    ),
    dict(
        code="ibuprofen",
        name="Ibuprofen",
        drug_class="nsaid",
        hold_days_high=1,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="5 half-lives for high risk: 1 day.",
    ),
    dict(
        code="diclofenac",
        name="Diclofenac",
        drug_class="nsaid",
        hold_days_high=1,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="5 half-lives for high risk: 1 day.",
    ),
    dict(
        code="naproxen",
        name="Naproxen",
        drug_class="nsaid",
        hold_days_high=4,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="5 half-lives for high risk: 4 days.",
    ),
    dict(
        code="meloxicam",
        name="Meloxicam",
        drug_class="nsaid",
        hold_days_high=4,
        hold_days_intermediate=0,
        hold_days_low=0,
        guidance="5 half-lives for high risk: 4 days.",
    ),
]


def install_default_drugs(drug_model: Any) -> None:
    """Create the default drugs that are missing; a clinic's edits to existing rows stay. Takes
    the model class so the data migration can pass its historical model."""
    for row in DEFAULTS:
        drug_model.objects.get_or_create(code=row["code"], defaults=row)

"""Legs and offsets follow the catalogue defaults of DOMAIN.md."""

import pytest

from core.errors import BookingInvalid
from scheduling.legs import plan_legs
from scheduling.models import ProcedureType

pytestmark = pytest.mark.django_db


def offsets(code: str, *, levels: int, sedation: str | None = None) -> list[tuple[str, int, int]]:
    spec = ProcedureType.objects.get(code=code)
    return [(str(leg.role), leg.offset, leg.end_offset) for leg in plan_legs(spec, levels=levels, sedation=sedation)]


def test_one_level_vertebroplasty_under_default_moderate_sedation():
    # Room 60 + turnover 20; physician after 20 min of positioning; recovery 120 after the room phase.
    assert offsets("VP", levels=1) == [
        ("patient", -60, 180),
        ("room", 0, 80),
        ("c_arm", 0, 60),
        ("physician", 20, 60),
        ("rad_tech", 0, 60),
        ("sedation_nurse", 0, 60),
        ("recovery_bay", 60, 180),
    ]


def test_three_level_vertebroplasty_extends_only_the_room_phase():
    # 60 + 2 x 30 = 120 room minutes; recovery still 120 minutes, starting when the room phase ends.
    assert offsets("VP", levels=3) == [
        ("patient", -60, 240),
        ("room", 0, 140),
        ("c_arm", 0, 120),
        ("physician", 20, 120),
        ("rad_tech", 0, 120),
        ("sedation_nurse", 0, 120),
        ("recovery_bay", 120, 240),
    ]


def test_kyphoplasty_under_mac_needs_anesthesia_not_a_sedation_nurse():
    assert offsets("KP", levels=1, sedation="mac") == [
        ("patient", -90, 225),
        ("room", 0, 100),
        ("c_arm", 0, 75),
        ("physician", 20, 75),
        ("rad_tech", 0, 75),
        ("anesthesia", 0, 75),
        ("recovery_bay", 75, 225),
    ]


def test_kyphoplasty_under_moderate_sedation_takes_a_sedation_nurse():
    roles = [role for role, _, _ in offsets("KP", levels=2, sedation="moderate")]
    assert "sedation_nurse" in roles
    assert "anesthesia" not in roles
    assert offsets("KP", levels=2, sedation="moderate")[1] == ("room", 0, 145)  # 75 + 45 + 25 turnover


def test_local_rfa_needs_the_rf_generator_and_no_sedation_staff():
    assert [role for role, _, _ in offsets("RFA", levels=2)] == [
        "patient",
        "room",
        "c_arm",
        "rf_generator",
        "physician",
        "rad_tech",
        "recovery_bay",
    ]


def test_scs_trial_needs_a_device_rep():
    assert "device_rep" in [role for role, _, _ in offsets("SCS-T", levels=1)]


@pytest.mark.parametrize(
    ("levels", "sedation", "code"),
    [(4, None, "levels_out_of_range"), (0, None, "levels_out_of_range"), (1, "general", "sedation_not_allowed")],
)
def test_levels_and_sedation_outside_the_catalogue_are_refused(levels, sedation, code):
    with pytest.raises(BookingInvalid) as caught:
        offsets("VP", levels=levels, sedation=sedation)
    assert [p.code for p in caught.value.problems] == [code]


def test_catalogue_is_seeded_with_the_domain_defaults():
    vp = ProcedureType.objects.get(code="VP")
    kp = ProcedureType.objects.get(code="KP")
    assert (vp.room_minutes, vp.minutes_per_extra_level, vp.max_levels, vp.turnover_minutes) == (60, 30, 3, 20)
    assert (vp.arrival_lead_minutes, vp.recovery_minutes, vp.recovery_flat_minutes) == (60, 120, 60)
    assert (vp.sedation_default, vp.bleeding_risk) == ("moderate", "high")
    assert (kp.room_minutes, kp.minutes_per_extra_level, kp.turnover_minutes, kp.recovery_minutes) == (75, 45, 25, 150)
    assert kp.sedation_default == "mac"
    assert "22513" in kp.cpt_codes
    assert "22510" in vp.cpt_codes
    assert sorted(ProcedureType.objects.values_list("code", flat=True)) == [
        "ESI-IL",
        "ESI-TF",
        "KP",
        "MBB",
        "RFA",
        "SCS-T",
        "SIJ",
        "VP",
    ]

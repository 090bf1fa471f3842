from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import Group, User

from patients.models import Drug, Patient
from rooms.models import Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from staff.models import Credential, Shift, StaffMember


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Site {n}")
    code = factory.Sequence(lambda n: f"site-{n}")
    timezone = "America/Chicago"
    jurisdiction = "TX"


class OpeningHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OpeningHours

    site = factory.SubFactory(SiteFactory)
    weekday = 0
    opens_at = dt.time(7, 0)
    closes_at = dt.time(18, 0)


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcedureRoom

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Fluoro {n}")
    capabilities = factory.LazyFunction(lambda: ["fluoroscopy", "sterile_field"])


class EquipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Equipment

    site = factory.SubFactory(SiteFactory)
    kind = "c_arm"
    name = factory.Sequence(lambda n: f"C-arm {n}")


class BayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecoveryBay

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Bay {n}")


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMember

    first_name = factory.Sequence(lambda n: f"Given{n}")
    last_name = factory.Sequence(lambda n: f"Family{n}")
    role = "physician"


class CredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credential

    staff = factory.SubFactory(StaffFactory)
    kind = "privilege"
    procedure_code = "VP"
    valid_from = dt.date(2020, 1, 1)
    expires_on = None


class ShiftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shift

    staff = factory.SubFactory(StaffFactory)
    site = factory.SubFactory(SiteFactory)
    weekday = 0
    starts_at = dt.time(7, 0)
    ends_at = dt.time(18, 0)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    first_name = factory.Sequence(lambda n: f"Pat{n}")
    last_name = "Example"
    date_of_birth = dt.date(1948, 5, 17)
    # Screened whatever their age, so checklist tests see the item; tests/test_pregnancy_screen.py
    # covers who is screened when nothing is recorded.
    pregnancy_possible = "yes"
    phone = "555-0100"
    escort_name = "Escort Example"
    escort_phone = "555-0101"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-only")

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            for name in extracted:
                group, _ = Group.objects.get_or_create(name=name)
                self.groups.add(group)
        if create:
            self.save()


def drug(code: str) -> Drug:
    """A drug of the default list (installed by migration, and again by the test clinic)."""
    return Drug.objects.get(code=code)

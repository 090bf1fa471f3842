"""Patients and the clinical records scheduling and the day of the procedure read: medication
holds, lab results and imaging on file. Minimal demographics only."""

from __future__ import annotations

from datetime import date

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from core.validators import birth_years, clinic_years
from patients.text import search_key


class Sex(models.TextChoices):
    """Administrative sex, with the codes of FHIR's AdministrativeGender."""

    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class PregnancyPossible(models.TextChoices):
    """Whether the pregnancy screen applies: from sex and age, or set for this patient."""

    AUTO = "auto", "From sex and age"
    YES = "yes", "Possible"
    NO = "no", "Not possible"


# Child-bearing potential when nothing else is recorded (ACR-SPR practice: screen patients of
# child-bearing potential before fluoroscopy of the pelvis or spine).
CHILDBEARING_AGES = (10, 55)


class SearchKeyField(models.CharField):
    """The patient's names lower-cased without accents or punctuation, kept by every save and
    bulk insert, so search matches "jose" to "José" on SQLite and PostgreSQL alike."""

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = search_key(getattr(model_instance, "last_name", ""), getattr(model_instance, "first_name", ""))
        setattr(model_instance, self.attname, value)
        return value


class Patient(models.Model):
    """Minimal demographics: what scheduling and the day of the procedure need."""

    mrn = models.CharField("MRN", max_length=40, unique=True)
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField(validators=[birth_years])
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    pregnancy_possible = models.CharField(
        max_length=4,
        choices=PregnancyPossible.choices,
        default=PregnancyPossible.AUTO,
        help_text="Whether the pregnancy screen applies; 'auto' decides from sex and age.",
    )
    phone = models.CharField(max_length=30, blank=True)
    escort_name = models.CharField(max_length=120, blank=True)
    escort_phone = models.CharField(max_length=30, blank=True)
    allergies = models.CharField(max_length=255, blank=True)
    search_key = SearchKeyField(max_length=170, blank=True, editable=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "mrn"]
        # Sync clients walk changes in (updated_at, id) order.
        indexes = [models.Index(fields=["updated_at", "id"], name="patients_patient_changes")]

    def __str__(self) -> str:
        # The admin and logs show the MRN only; names are read through audited views.
        return f"Patient {self.mrn}"

    def age_on(self, day: date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def may_be_pregnant(self, on: date) -> bool:
        """The one rule for whether the pregnancy screen applies to this patient on a day.

        A recorded answer wins; otherwise a patient who is not recorded as male is screened while
        of child-bearing age (sex unknown or other is screened, not assumed away).
        """
        if self.pregnancy_possible != PregnancyPossible.AUTO:
            return self.pregnancy_possible == PregnancyPossible.YES
        if self.sex == Sex.MALE:
            return False
        if self.date_of_birth is None:
            return True
        first, last = CHILDBEARING_AGES
        return first <= self.age_on(on) <= last


class BleedingRisk(models.TextChoices):
    """A procedure's bleeding risk class (ASRA 2018 pain guidelines; each procedure type names
    its own, and each drug its hold days per class)."""

    LOW = "low", "Low"
    INTERMEDIATE = "intermediate", "Intermediate"
    HIGH = "high", "High"


class DrugClass(models.TextChoices):
    VITAMIN_K_ANTAGONIST = "vka", "Vitamin K antagonist"
    DIRECT_ORAL_ANTICOAGULANT = "doac", "Direct oral anticoagulant"
    HEPARIN = "heparin", "Low-molecular-weight heparin"
    P2Y12_INHIBITOR = "p2y12", "P2Y12 inhibitor (antiplatelet)"
    ASPIRIN = "aspirin", "Aspirin"
    OTHER_ANTIPLATELET = "antiplatelet", "Other antiplatelet"
    NSAID = "nsaid", "NSAID"


def effective_hold_days(default_days: int, override: int | None) -> int:
    """The days a patient holds a drug before a case: the drug list's days for the case's
    bleeding risk, or the patient's own number where the list asks for a hold at all (e.g. 6
    days of dabigatran with renal impairment). The list's 0 means no hold, whatever the
    patient's number."""
    if default_days <= 0:
        return 0
    return override if override is not None else default_days


class Drug(models.Model):
    """An anticoagulant or antiplatelet and the whole days it must be stopped before a
    procedure of each bleeding risk (0: no hold). Editable clinic data, seeded from the ASRA
    2018 guidance; stopping always needs the prescriber's agreement."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, unique=True)
    drug_class = models.CharField(max_length=20, choices=DrugClass.choices)
    hold_days_high = models.PositiveSmallIntegerField(default=0, help_text="Days before a high-bleeding-risk case.")
    hold_days_intermediate = models.PositiveSmallIntegerField(
        default=0, help_text="Days before an intermediate-bleeding-risk case."
    )
    hold_days_low = models.PositiveSmallIntegerField(default=0, help_text="Days before a low-bleeding-risk case.")
    guidance = models.CharField(max_length=255, blank=True, help_text="What the days are based on, for staff.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(hold_days_high__lte=60, hold_days_intermediate__lte=60, hold_days_low__lte=60),
                name="patients_drug_hold_days_bounded",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def hold_days_for(self, bleeding_risk: str) -> int:
        days: dict[str, int] = {
            BleedingRisk.HIGH.value: self.hold_days_high,
            BleedingRisk.INTERMEDIATE.value: self.hold_days_intermediate,
            BleedingRisk.LOW.value: self.hold_days_low,
        }
        return days.get(str(bleeding_risk), self.hold_days_high)


class MedicationHold(models.Model):
    """A drug from the list the patient must stop before a case.

    A case of a bleeding risk the drug is held for may not start before
    ``last_dose_on + days + 1`` (that many whole days without the drug); while ``last_dose_on``
    is empty the patient is still taking it and the hold counts from today.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="medication_holds")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="holds")
    hold_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(60)],
        help_text="Days for this patient, where the drug list asks for a hold; empty uses the list's days.",
    )
    last_dose_on = models.DateField(null=True, blank=True, validators=[clinic_years])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "drug"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "drug"], name="patients_medicationhold_one_per_drug"),
            models.CheckConstraint(
                condition=Q(hold_days__isnull=True) | Q(hold_days__lte=60), name="patients_medicationhold_days_bounded"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.drug} hold"

    def days_for(self, bleeding_risk: str) -> int:
        return effective_hold_days(self.drug.hold_days_for(bleeding_risk), self.hold_days)


class LabTest(models.TextChoices):
    INR = "inr", "INR"
    PLATELETS = "platelets", "Platelets (10^3/uL)"


class LabResult(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="lab_results")
    test = models.CharField(max_length=20, choices=LabTest.choices)
    value = models.DecimalField(max_digits=7, decimal_places=2)
    taken_at = models.DateTimeField(validators=[clinic_years])

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"{self.get_test_display()} {self.value}"


class ImagingModality(models.TextChoices):
    MRI_STIR = "mri_stir", "MRI with STIR"
    CT = "ct", "CT"
    BONE_SCAN = "bone_scan", "Bone scan"


class ImagingStudy(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="imaging_studies")
    modality = models.CharField(max_length=20, choices=ImagingModality.choices)
    performed_on = models.DateField(validators=[clinic_years])

    class Meta:
        ordering = ["-performed_on"]
        verbose_name_plural = "imaging studies"

    def __str__(self) -> str:
        return f"{self.get_modality_display()} {self.performed_on}"

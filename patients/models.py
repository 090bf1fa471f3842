"""Patients and the clinical records scheduling and the day of the procedure read: medication
holds, lab results and imaging on file. Minimal demographics only."""

from __future__ import annotations

from datetime import date

from django.db import models

from core.validators import birth_years, clinic_years


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["last_name", "first_name", "mrn"]

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


class MedicationHold(models.Model):
    """An anticoagulant or antiplatelet the patient must stop before a high-bleeding-risk case.

    The case may not start before ``last_dose_on + hold_days + 1`` (that many whole days
    without the drug); while ``last_dose_on`` is empty the patient is still taking it and the
    hold counts from today.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="medication_holds")
    medication = models.CharField(max_length=60)
    hold_days = models.PositiveSmallIntegerField()
    last_dose_on = models.DateField(null=True, blank=True, validators=[clinic_years])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "medication"]

    def __str__(self) -> str:
        return f"{self.medication} hold {self.hold_days} d"


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

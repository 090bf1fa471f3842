"""The pages' forms. They check shape and turn text into values; whether a case may happen is
the rulebook's, asked through the same services and selectors as the API."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from core.errors import BookingInvalid
from core.validators import clinic_years
from patients.models import Drug, Patient
from rooms.models import ProcedureRoom, Site
from scheduling.models import CancelReason, ProcedureType, Sedation
from scheduling.order import CaseOrder, PriorAuthStatus, Side, case_order, level_count
from staff.models import StaffMember, StaffRole

DEFAULT_RANGE_DAYS = 21
TIMES_OF_DAY = {"": (None, None), "morning": (None, time(12, 0)), "afternoon": (time(12, 0), None)}


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label="Find a patient",
        max_length=100,
        help_text="Name, date of birth (YYYY-MM-DD or MM/DD/YYYY) or MRN; case and accents do not matter.",
    )


class PatientForm(forms.ModelForm):
    duplicate_ok = forms.BooleanField(
        required=False, label="I have checked: this is a different person from the patient shown"
    )

    class Meta:
        model = Patient
        fields = [
            "mrn",
            "first_name",
            "last_name",
            "date_of_birth",
            "sex",
            "pregnancy_possible",
            "phone",
            "escort_name",
            "escort_phone",
            "allergies",
        ]
        widgets = {"date_of_birth": DateInput()}
        labels = {"escort_name": "Escort (responsible adult)", "pregnancy_possible": "Pregnancy screen"}
        help_texts = {
            "pregnancy_possible": "Whether the pregnancy screen applies; “From sex and age” decides from the "
            "patient's sex and age.",
            "allergies": "Contrast, latex, cement or drug allergies; leave empty if none known.",
        }

    def validate_unique(self) -> None:
        # The registration service reports a same-MRN patient with the match.
        return None


class HoldForm(forms.Form):
    drug = forms.ModelChoiceField(
        queryset=Drug.objects.filter(is_active=True).order_by("name"),
        label="Drug",
        empty_label="Choose from the drug list…",
    )
    last_dose_on = forms.DateField(
        required=False, widget=DateInput(), label="Last dose", help_text="Empty while the patient still takes it."
    )
    hold_days = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=60,
        label="Days for this patient",
        help_text="Empty uses the drug list's days (shown with each drug).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["drug"]
        assert isinstance(field, forms.ModelChoiceField)
        field.label_from_instance = lambda drug: (  # type: ignore[method-assign,assignment]
            f"{drug.name} — hold {drug.hold_days_high} d before high-risk, "
            f"{drug.hold_days_intermediate} d intermediate, {drug.hold_days_low} d low"
        )


class BookingForm(forms.Form):
    """The order (what the referral asks for) and the slot finder's filters."""

    patient = forms.ModelChoiceField(queryset=Patient.objects.none(), widget=forms.HiddenInput)
    procedure_type = forms.ModelChoiceField(
        queryset=ProcedureType.objects.filter(is_active=True).order_by("code"),
        label="Procedure",
        empty_label="Choose a procedure…",
    )
    level_names = forms.CharField(
        required=False, max_length=80, label="Levels", help_text="By name, e.g. T12, L1. Their count sets the time."
    )
    side = forms.ChoiceField(choices=Side.choices, required=False)
    sedation = forms.ChoiceField(
        choices=[("", "Procedure's default"), *Sedation.choices], required=False, label="Sedation"
    )
    indication_code = forms.CharField(required=False, max_length=10, label="ICD-10 code", help_text="e.g. M80.08XA")
    indication_text = forms.CharField(required=False, max_length=200, label="Indication")
    referring_provider = forms.CharField(required=False, max_length=120)
    external_order_id = forms.CharField(required=False, max_length=60, label="Order id (referral)")
    prior_auth_number = forms.CharField(required=False, max_length=60, label="Prior authorisation number")
    prior_auth_status = forms.ChoiceField(choices=PriorAuthStatus.choices, label="Prior authorisation")
    notes = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    anticoagulant_override_reason = forms.CharField(
        required=False,
        max_length=255,
        label="Override the anticoagulant hold: reason",
        help_text="Only to book inside the patient's hold, as the physician decides; recorded on the case.",
    )
    site = forms.ModelChoiceField(queryset=Site.objects.none(), empty_label=None, label="Site")
    date_from = forms.DateField(widget=DateInput(), label="From", validators=[clinic_years])
    date_to = forms.DateField(widget=DateInput(), label="To", validators=[clinic_years])
    physician = forms.ModelChoiceField(queryset=StaffMember.objects.none(), required=False, empty_label="Any")
    room = forms.ModelChoiceField(queryset=ProcedureRoom.objects.none(), required=False, empty_label="Any")
    time_of_day = forms.ChoiceField(
        choices=[("", "Any time"), ("morning", "Morning (before 12:00)"), ("afternoon", "Afternoon (from 12:00)")],
        required=False,
        label="Time of day",
    )

    def __init__(
        self, *args: Any, patients: Any, may_override: bool, own_physician: StaffMember | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = patients  # type: ignore[attr-defined]
        physicians = StaffMember.objects.filter(role=StaffRole.PHYSICIAN, is_active=True).order_by("last_name")
        if own_physician is not None:
            physicians = physicians.filter(pk=own_physician.pk)
            self.fields["physician"].empty_label = None  # type: ignore[attr-defined]
            self.fields["physician"].required = True
        self.fields["physician"].queryset = physicians  # type: ignore[attr-defined]
        self.fields["room"].queryset = ProcedureRoom.objects.filter(is_active=True).order_by(  # type: ignore[attr-defined]
            "site__name", "name"
        )
        self.fields["site"].queryset = Site.objects.filter(is_active=True).order_by("name")  # type: ignore[attr-defined]
        if not may_override:
            del self.fields["anticoagulant_override_reason"]
        self.order: CaseOrder | None = None

    @staticmethod
    def initial_range(today: date) -> dict[str, date]:
        return {"date_from": today + timedelta(days=1), "date_to": today + timedelta(days=DEFAULT_RANGE_DAYS)}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            self.order = case_order(data)
            data["levels"] = level_count(self.order.level_names, None)
        except BookingInvalid as exc:
            for problem in exc.problems:
                self.add_error(problem.field if problem.field in self.fields else None, problem.message)
        first, last = data.get("date_from"), data.get("date_to")
        if first and last:
            if last < first:
                self.add_error("date_to", "The range ends before it starts.")
            elif (last - first).days > 62:
                self.add_error("date_to", "Search at most nine weeks at a time.")
        room, site = data.get("room"), data.get("site")
        if room is not None and site is not None and room.site_id != site.pk:
            self.add_error("room", f"{room} is not at {site}.")
        earliest, latest = TIMES_OF_DAY.get(data.get("time_of_day") or "", (None, None))
        data["earliest"], data["latest"] = earliest, latest
        return data

    def pins(self) -> dict[str, int]:
        data = self.cleaned_data
        return {name: data[name].pk for name in ("physician", "room") if data.get(name) is not None}


class StartForm(forms.Form):
    """A start typed by hand, in the site's zone."""

    start = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        label="Or try a start",
        required=False,
    )

    def clean_start(self) -> datetime:
        value = self.cleaned_data.get("start")
        if value is None:
            raise forms.ValidationError("Type the date and time to check.")
        clinic_years(value)
        return value

    def aware(self, zone: ZoneInfo) -> datetime:
        value: datetime = self.cleaned_data["start"]
        value = value.replace(tzinfo=None) if timezone.is_aware(value) else value
        return value.replace(tzinfo=zone)


class CancelForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", "Choose a reason…"), *CancelReason.choices[:-2], CancelReason.choices[-1]])
    note = forms.CharField(required=False, max_length=255, label="Note")


LOCAL_DATETIME = {"type": "datetime-local"}
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


def local_datetime_field(label: str, *, required: bool = False, help_text: str = "") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        help_text=help_text,
        input_formats=LOCAL_FORMATS,
        widget=forms.DateTimeInput(attrs=LOCAL_DATETIME, format="%Y-%m-%dT%H:%M"),
    )


def in_zone(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A time typed on a page, read as the site's wall clock."""
    if value is None:
        return None
    clinic_years(value)
    naive = value.replace(tzinfo=None) if timezone.is_aware(value) else value
    return naive.replace(tzinfo=zone)


class ChecklistForm(forms.Form):
    """The readiness checklist as the nurse records it; times in the site's zone."""

    consent_signed_at = local_datetime_field("Consent signed at")
    last_solids_at = local_datetime_field("Last solid food at")
    last_clears_at = local_datetime_field("Last clear liquids at")
    escort_confirmed = forms.BooleanField(required=False, label="Escort's pickup confirmed")
    allergies_reviewed = forms.BooleanField(required=False, label="Contrast and cement allergies reviewed")
    pregnancy_status = forms.ChoiceField(label="Pregnancy screen", required=False)

    def __init__(self, *args: Any, zone: ZoneInfo, pregnancy: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from procedure_day.models import PregnancyStatus

        self.zone = zone
        if pregnancy:
            self.fields["pregnancy_status"].choices = PregnancyStatus.choices  # type: ignore[attr-defined]
        else:
            del self.fields["pregnancy_status"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("consent_signed_at", "last_solids_at", "last_clears_at"):
            try:
                data[name] = in_zone(data.get(name), self.zone)
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        return data

    def changes(self) -> dict[str, Any]:
        """The answers to record: the times given (a blank time changes nothing), the ticks."""
        data = self.cleaned_data
        out: dict[str, Any] = {}
        for name in ("consent_signed_at", "last_solids_at", "last_clears_at"):
            value = data.get(name)
            if value is not None:
                out[name] = value
        out["escort_confirmed"] = bool(data.get("escort_confirmed"))
        out["allergies_reviewed"] = bool(data.get("allergies_reviewed"))
        if data.get("pregnancy_status"):
            out["pregnancy_status"] = data["pregnancy_status"]
        return out


class StepTimeForm(forms.Form):
    step = forms.CharField(widget=forms.HiddenInput)
    at = local_datetime_field("Correct time", required=True)
    reason = forms.CharField(max_length=255, label="Reason for the correction")

    def aware(self, zone: ZoneInfo) -> datetime:
        """The corrected time in the site's zone (checked to lie in the clinic's years)."""
        value = in_zone(self.cleaned_data["at"], zone)
        assert value is not None
        return value


class DowntimeForm(forms.Form):
    """A room or a piece of equipment out of service, in the site's zone."""

    target = forms.ChoiceField(label="Room or equipment")
    starts_at = local_datetime_field("From", required=True)
    ends_at = local_datetime_field("Until", required=True)
    reason = forms.ChoiceField(label="Reason")
    note = forms.CharField(required=False, max_length=255, label="Note")

    def __init__(self, *args: Any, site: Site, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from rooms.models import DowntimeReason, Equipment

        self.zone = site.zone
        rooms = ProcedureRoom.objects.filter(site=site, is_active=True).order_by("name")
        equipment = Equipment.objects.filter(site=site, is_active=True).order_by("kind", "name")
        self.fields["target"].choices = [  # type: ignore[attr-defined]
            ("", "Choose…"),
            ("Rooms", [(f"room:{r.pk}", str(r)) for r in rooms]),
            ("Equipment", [(f"equipment:{e.pk}", f"{e} ({e.get_kind_display()})") for e in equipment]),
        ]
        self.fields["reason"].choices = DowntimeReason.choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            start = in_zone(data.get("starts_at"), self.zone)
            end = in_zone(data.get("ends_at"), self.zone)
        except forms.ValidationError as exc:
            self.add_error(None, exc)
            return data
        if start is not None and end is not None and end <= start:
            self.add_error("ends_at", "The downtime must end after it starts.")
        data["starts_at"], data["ends_at"] = start, end
        return data

    def record(self) -> dict[str, Any]:
        """The downtime's fields for the service."""
        data = self.cleaned_data
        column, _, pk = data["target"].partition(":")
        return {
            f"{column}_id": int(pk),
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "reason": data["reason"],
            "note": data.get("note", ""),
        }

"""Patient search, registration with the duplicate warning, and the patient's page with their
medication holds entered from the drug list."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from core.audit import audit_patients
from core.errors import BookingInvalid, PossibleDuplicate
from patients.models import Patient
from patients.registry import find_patients
from patients.services import patient_register
from scheduling import policy
from scheduling.selectors import bookings_visible_to, patients_bookable_by, patients_visible_to
from scheduling.services.medication import medication_hold_create
from web.access import not_found, page
from web.forms import HoldForm, PatientForm, PatientSearchForm


@page(policy.PATIENT_REGISTRARS | policy.OWN_CASE_BOOKERS | policy.SEE_EVERY_CASE)
def search(request: HttpRequest) -> HttpResponse:
    """Search by POST, so names and birth dates stay out of addresses and access logs."""
    form = PatientSearchForm(request.POST or None)
    results: list[Patient] = []
    searched = False
    if request.method == "POST" and form.is_valid():
        searched = True
        results = find_patients(patients_visible_to(request.user), form.cleaned_data["q"])
        audit_patients(request.user, "patient.search", [p.pk for p in results])
    context = {
        "form": form,
        "results": results,
        "searched": searched,
        "may_register": policy.may(request.user, policy.PATIENT_REGISTRARS),
        "may_book": policy.may(request.user, policy.BOOKERS | policy.OWN_CASE_BOOKERS),
        "title": "Patients",
    }
    template = "web/_patient_results.html" if request.headers.get("HX-Request") else "web/patients.html"
    return render(request, template, context)


@page(policy.PATIENT_REGISTRARS)
def register(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    matches: list[Patient] = []
    same_mrn = False
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "duplicate_ok"}
        try:
            patient = patient_register(
                actor=request.user, data=data, duplicate_ok=bool(form.cleaned_data.get("duplicate_ok"))
            )
        except PossibleDuplicate as exc:
            matches = list(Patient.objects.filter(pk__in=exc.matches))
            same_mrn = exc.same_mrn
            audit_patients(request.user, "patient.duplicate_shown", exc.matches)
            form.add_error(None, exc.message)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except IntegrityError:
            # Another registration with this MRN committed between the check and the insert.
            form.add_error("mrn", "A patient with this MRN was registered a moment ago; search for them.")
        else:
            messages.success(request, "Patient registered. Add their blood thinners below, then book.")
            return redirect("web:patient", pk=patient.pk)
    context = {"form": form, "matches": matches, "same_mrn": same_mrn, "title": "Register a patient"}
    return render(request, "web/register.html", context)


@page(policy.EVERYONE)
def patient_page(request: HttpRequest, pk: int) -> HttpResponse:
    patient = patients_visible_to(request.user).filter(pk=pk).first()
    if patient is None:
        return not_found(request, "patient")
    fields = set(policy.patient_fields(request.user))
    audit_patients(request.user, "patient.read", [patient.pk])
    clinical = policy.sees_clinical_records(request.user)
    holds = list(patient.medication_holds.select_related("drug").order_by("drug__name")) if clinical else []
    context = {
        "patient": patient,
        "fields": fields,
        "clinical": clinical,
        "holds": holds,
        "labs": list(patient.lab_results.all()[:10]) if clinical else [],
        "imaging": list(patient.imaging_studies.all()[:10]) if clinical else [],
        "cases": list(bookings_visible_to(request.user).filter(patient=patient).order_by("-starts_at")[:20]),
        "hold_form": HoldForm(),
        "may_record_holds": policy.may(request.user, policy.MEDICATION_RECORDERS),
        "may_book": patients_bookable_by(request.user).filter(pk=patient.pk).exists(),
        "title": "Patient",
    }
    return render(request, "web/patient.html", context)


@page(policy.MEDICATION_RECORDERS)
def add_hold(request: HttpRequest, pk: int) -> HttpResponse:
    patient = patients_visible_to(request.user).filter(pk=pk).first()
    if patient is None:
        return not_found(request, "patient")
    if request.method != "POST":
        return redirect("web:patient", pk=pk)
    form = HoldForm(request.POST)
    if form.is_valid():
        try:
            medication_hold_create(actor=request.user, patient=patient, **form.cleaned_data)
        except BookingInvalid as exc:
            messages.error(request, exc.message)
        except ValidationError as exc:
            messages.error(request, " ".join(" ".join(v) for v in exc.message_dict.values()))
        else:
            messages.success(request, f"{form.cleaned_data['drug'].name} recorded; cases are checked against its hold.")
    else:
        words = " ".join(str(e) for errs in form.errors.values() for e in errs)
        messages.error(request, f"The hold was not recorded: {words}")
    return redirect(reverse("web:patient", kwargs={"pk": pk}) + "#holds")

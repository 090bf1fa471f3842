"""Finding a patient the way front-desk staff type: by name, date of birth or MRN, forgiving of
case and accents; and spotting a registration that looks like someone already on file."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Q, QuerySet

from patients.models import Patient
from patients.text import search_key

DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%m-%d-%Y")
MAX_RESULTS = 25


def parse_birth_date(token: str) -> date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(token, fmt).date()  # noqa: DTZ007 (a calendar date, no time)
        except ValueError:
            continue
    return None


def find_patients(patients: QuerySet[Patient], text: str) -> list[Patient]:
    """Patients among ``patients`` matching every name word and date of birth typed, or whose
    MRN is what was typed; at most MAX_RESULTS, by name."""
    text = text.strip()
    if not text:
        return []
    born: date | None = None
    words: list[str] = []
    for token in text.replace(",", " ").split():
        day = parse_birth_date(token)
        if day is not None:
            born = day
        else:
            words.extend(search_key(token).split())
    by_name = Q()
    for word in words:
        by_name &= Q(search_key__contains=word)
    if born is not None:
        by_name &= Q(date_of_birth=born)
    match = Q(mrn__iexact=text)
    if words or born is not None:
        match |= by_name
    return list(patients.filter(match).order_by("last_name", "first_name", "id")[:MAX_RESULTS])


def likely_duplicates(*, first_name: str, last_name: str, date_of_birth: date | None, mrn: str) -> list[Patient]:
    """Patients on file with the same MRN, or the same name and date of birth (ignoring case and
    accents): what a registration should be warned of before it creates a second record."""
    match = Q(mrn__iexact=mrn.strip()) if mrn.strip() else Q(pk__in=[])
    if date_of_birth is not None:
        match |= Q(search_key=search_key(last_name, first_name), date_of_birth=date_of_birth)
    return list(Patient.objects.filter(match).order_by("id")[:MAX_RESULTS])

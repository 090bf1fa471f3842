"""The shapes of a day's answers: a physician's daily list and a site's schedule."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import InstantText
from api.serializers.bookings import ResourceRefSerializer as ResourceRef

INSTANT = "ISO 8601 with the site's offset."


class NamedRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class EscortSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True, allow_blank=True)
    phone = serializers.CharField(allow_null=True, allow_blank=True)


class DailyCaseSerializer(serializers.Serializer):
    booking = serializers.IntegerField()
    start = InstantText(help_text=f"The procedure starts; {INSTANT}")
    arrival = InstantText(help_text=f"The patient arrives; {INSTANT}")
    end = InstantText(help_text=f"The patient leaves recovery; {INSTANT}")
    status = serializers.CharField()
    procedure_type = serializers.CharField()
    procedure = serializers.CharField()
    levels = serializers.IntegerField()
    sedation = serializers.CharField()
    room = serializers.CharField(allow_null=True)
    c_arm = serializers.CharField(allow_null=True)
    rad_tech = serializers.CharField(allow_null=True)
    sedation_staff = serializers.CharField(allow_null=True)
    recovery_bay = serializers.CharField(allow_null=True)
    readiness = serializers.DictField(help_text="The readiness checklist: whether it passes and each item.")
    anticoagulant_override = serializers.DictField(allow_null=True)
    patient = serializers.DictField(help_text="The patient's fields your role may see.")
    escort = EscortSerializer(allow_null=True)
    allergies = serializers.CharField(allow_blank=True)


class DailyListSerializer(serializers.Serializer):
    physician = NamedRef()
    date = serializers.DateField()
    cases = DailyCaseSerializer(many=True, help_text="In order of start.")


class ScheduleLegSerializer(serializers.Serializer):
    booking = serializers.IntegerField()
    procedure_type = serializers.CharField()
    status = serializers.CharField()
    role = serializers.CharField()
    resource = ResourceRef()
    start = InstantText(help_text=INSTANT)
    end = InstantText(help_text=INSTANT)


class ScheduleDowntimeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    resource = ResourceRef()
    reason = serializers.CharField()
    start = InstantText(help_text=INSTANT)
    end = InstantText(help_text=INSTANT)


class ScheduleTimeOffSerializer(serializers.Serializer):
    staff = NamedRef()
    start = InstantText(help_text=INSTANT)
    end = InstantText(help_text=INSTANT)


class ScheduleDelaySerializer(serializers.Serializer):
    booking = serializers.IntegerField()
    minutes = serializers.IntegerField()
    running_late = serializers.BooleanField(help_text="This case itself is running late.")
    because_of = serializers.ListField(child=serializers.IntegerField(), help_text="The cases holding it up.")


class SiteScheduleSerializer(serializers.Serializer):
    site = serializers.IntegerField()
    date = serializers.DateField()
    legs = ScheduleLegSerializer(many=True, help_text="Every leg of every resource that day.")
    downtime = ScheduleDowntimeSerializer(many=True)
    time_off = ScheduleTimeOffSerializer(many=True)
    delays = ScheduleDelaySerializer(
        many=True, help_text="The projected delay of each case a case running late holds up."
    )

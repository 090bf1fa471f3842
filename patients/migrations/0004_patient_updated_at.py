import django.utils.timezone
from django.db import migrations, models


def from_created(apps, schema_editor):
    # A patient on file before changes were tracked last changed, as far as we know, when created.
    Patient = apps.get_model("patients", "Patient")
    Patient.objects.update(updated_at=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [("patients", "0003_patient_search_key")]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.RunPython(from_created, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["updated_at", "id"], name="patients_patient_changes"),
        ),
    ]

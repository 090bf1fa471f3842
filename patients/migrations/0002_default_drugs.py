"""Install the default list of anticoagulants and antiplatelets (patients/drugs.py)."""

from django.db import migrations

from patients.drugs import install_default_drugs


def forwards(apps, schema_editor):
    install_default_drugs(apps.get_model("patients", "Drug"))


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

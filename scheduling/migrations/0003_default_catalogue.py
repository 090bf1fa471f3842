"""Install the default procedure catalogue (scheduling/catalogue.py)."""

from django.db import migrations

from scheduling.catalogue import install_default_catalogue


def forwards(apps, schema_editor):
    install_default_catalogue(apps.get_model("scheduling", "ProcedureType"))


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0002_no_overlap_guard")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

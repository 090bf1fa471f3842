from django.db import migrations


class Migration(migrations.Migration):
    """The Idempotency-Key records now belong to core (same table): see core 0006."""

    dependencies = [
        ("api", "0001_tokens_and_idempotency"),
        ("core", "0006_idempotency_record"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyRecord")],
            database_operations=[],
        ),
    ]

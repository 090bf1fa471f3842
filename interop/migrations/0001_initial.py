
import django.core.validators
import django.db.models.deletion
import interop.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('outbox', '0002_change_events'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Hl7Interface',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80, unique=True)),
                ('host', models.CharField(max_length=255)),
                ('port', models.PositiveIntegerField()),
                ('sending_application', models.CharField(default='PAINSCHED', max_length=20)),
                ('sending_facility', models.CharField(default='CLINIC', max_length=20)),
                ('receiving_application', models.CharField(default='EHR', max_length=20)),
                ('receiving_facility', models.CharField(default='HOSPITAL', max_length=20)),
                ('processing_id', models.CharField(default='P', help_text='MSH-11: P production, T training, D debug.', max_length=1)),
                ('timeout_seconds', models.PositiveSmallIntegerField(default=10, help_text='How long to wait to connect, and for the acknowledgement (1 to 30 s).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(30)])),
                ('is_active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('lease_until', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name': 'HL7 interface',
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject_key', models.CharField(max_length=40)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('parked', 'Parked'), ('skipped', 'Skipped')], default='pending', max_length=10)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField()),
                ('queued_at', models.DateTimeField()),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=255)),
                ('control_id', models.CharField(blank=True, max_length=20)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='outbox.changeevent')),
                ('interface', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='interop.hl7interface')),
            ],
            options={
                'verbose_name_plural': 'deliveries',
                'ordering': ['event_id', 'id'],
            },
        ),
        migrations.CreateModel(
            name='DeliveryAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('outcome', models.CharField(max_length=20)),
                ('code', models.CharField(blank=True, help_text='HTTP status or HL7 acknowledgement code.', max_length=10)),
                ('detail', models.CharField(blank=True, max_length=255)),
                ('duration_ms', models.PositiveIntegerField(default=0)),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='log', to='interop.delivery')),
            ],
            options={
                'ordering': ['at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='WebhookSubscription',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80)),
                ('url', models.URLField(max_length=500, validators=[django.core.validators.URLValidator(message='Give an http:// or https:// address.', schemes=['http', 'https'])])),
                ('secret', models.CharField(default=interop.models.new_secret, max_length=80)),
                ('previous_secret', models.CharField(blank=True, max_length=80)),
                ('previous_secret_until', models.DateTimeField(blank=True, null=True)),
                ('events', models.JSONField(blank=True, default=list, help_text='Event kinds; empty means every kind.', validators=[interop.models.known_event_kinds])),
                ('is_active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('lease_until', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name', 'id'],
            },
        ),
        migrations.AddField(
            model_name='delivery',
            name='webhook',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='interop.webhooksubscription'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['status', 'next_attempt_at'], name='interop_delivery_due'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('interface__isnull', True), ('webhook__isnull', False)), models.Q(('interface__isnull', False), ('webhook__isnull', True)), _connector='OR'), name='interop_delivery_one_destination'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('event', 'webhook'), name='interop_delivery_once_per_webhook'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('event', 'interface'), name='interop_delivery_once_per_interface'),
        ),
    ]

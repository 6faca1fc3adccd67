from django.db import migrations, models


class Migration(migrations.Migration):
    """Failures stored as a message id and params too, shown in the reader's language."""

    dependencies = [
        ("certs", "0010_preset_owners"),
    ]

    operations = [
        migrations.AddField(
            model_name="certificate",
            name="last_failure",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="installtarget",
            name="last_failure",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="order",
            name="failure",
            field=models.JSONField(blank=True, null=True),
        ),
    ]

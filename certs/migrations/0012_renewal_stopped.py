from django.db import migrations, models


class Migration(migrations.Migration):
    """Its owner stopped renewing the certificate (its site was deleted): no expiry alerts."""

    dependencies = [
        ("certs", "0011_failure_messages"),
    ]

    operations = [
        migrations.AddField(
            model_name="certificate",
            name="renewal_stopped",
            field=models.BooleanField(default=False),
        ),
    ]

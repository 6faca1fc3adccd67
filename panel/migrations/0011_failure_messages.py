from django.db import migrations, models


class Migration(migrations.Migration):
    """A failed apply stored as a message id and params too, shown in the reader's language."""

    dependencies = [
        ("panel", "0010_default_ca"),
    ]

    operations = [
        migrations.AddField(
            model_name="site",
            name="config_failure",
            field=models.JSONField(blank=True, null=True),
        ),
    ]

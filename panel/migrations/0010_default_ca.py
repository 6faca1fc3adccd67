from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('panel', '0009_shared_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='panelsettings',
            name='default_ca',
            field=models.CharField(default='letsencrypt', help_text='Users without an account there get a certificate in one click on a site\'s SSL tab: the panel registers the account for them. CAs that need External Account Binding are not offered: their accounts need keys from the CA\'s own site.', max_length=64, verbose_name='default certificate authority'),
        ),
    ]

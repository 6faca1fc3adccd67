# Run by scripts/install through `manage.py shell -c`: the administrator `admin` on a new
# installation, with a generated password printed once (to the installer, never to a log).
import secrets

from django.contrib.auth import get_user_model

User = get_user_model()
if not User.objects.filter(is_superuser=True).exists() and not User.objects.filter(username="admin").exists():
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", email="", password=password)
    print(password)

from pathlib import Path

from django.core.management.base import BaseCommand

from panel.security import homes
from panel.toolkit import validation


class Command(BaseCommand):
    help = ("List the sites and install targets of users (not administrators) whose paths lie outside their "
            "home (CERTPANEL_HOME_ROOT/<username>/), saying whether a granted directory keeps them working. "
            "The upgrade that brought homes (migration panel 0007_user_homes) granted each such directory (a "
            "site's root, an install file's folder) to its owner; one not covered (its grant taken back, "
            "CERTPANEL_HOME_ROOT changed, an administrator made a user) is refused at its next edit, and an "
            "install target fails at its next run. --grant grants those directories as the upgrade did. "
            "Exits with status 1 while any path is not covered.")

    def add_arguments(self, parser):
        parser.add_argument("--grant", action="store_true",
                            help="grant each uncovered directory to the path's owner")

    def handle(self, *args, grant, **options):
        rows = homes.paths_outside_homes()
        uncovered = 0
        for kind, obj, path, owner, granted in rows:
            line = f"{owner.get_username()}: {kind} #{obj.pk}: {path}"
            granted = granted or validation.is_under(Path(path), homes.granted_roots(owner))  # granted just now
            if granted:
                self.stdout.write(f"{line} (outside the home, inside a granted directory)")
            elif grant and not homes.overlaps_homes(Path(homes.grant_for(kind, path))):
                directory = homes.grant_for(kind, path)
                homes.set_grants(owner, sorted({*map(str, homes.granted_roots(owner)), directory}))
                self.stdout.write(f"{line} (granted {directory})")
            else:
                uncovered += 1
                self.stdout.write(f"{line} NOT COVERED: grant {homes.grant_for(kind, path)} or move it "
                                  f"into {homes.home_of(owner)}")
        if not rows:
            self.stdout.write("Every user's site and install path lies inside their home.")
        if uncovered:
            self.stderr.write(f"{uncovered} path(s) not covered; run with --grant to grant their directories.")
            raise SystemExit(1)

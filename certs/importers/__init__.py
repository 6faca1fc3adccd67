"""Moving in from other ACME clients (acme.sh, certbot): readers and one writer."""

"""Pages of the certificate side, one module per resource. Thin: access -> form -> one service
call -> redirect or page; what several pages show comes from certs.presentation."""

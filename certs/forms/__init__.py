"""Forms of the certificate pages, one module per resource."""

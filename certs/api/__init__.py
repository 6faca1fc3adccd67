"""REST API of the certificate side, one module per resource; panel.urls routes them."""

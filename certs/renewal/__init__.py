"""Renewal: the policy (when a certificate renews, what an issuance or a failure changes) and
the sweep that starts due renewals. Orders use the policy; the sweep uses orders."""

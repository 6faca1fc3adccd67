"""Order pages: the status fragment the site page polls while an order runs, and manual
DNS-01's "the records are in place"."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from certs import orders
from certs.models import Certificate, Order
from certs.presentation import back_to_site_or, with_dns_records, with_status_details
from panel.toolkit import access


@login_required
def order_status(request, pk):
    """The fragment the site page polls while an order runs; finished, it stops asking to be polled."""
    order = access.get_owned(Order, request.user, pk=pk)
    certificate = (
        access.scoped(Certificate, request.user).with_current_version().get(pk=order.certificate_id)
    )
    response = render(request, "certs/_certificate_status.html",
                      {"order": with_dns_records(order), "certificate": with_status_details(certificate)})
    if order.finished:
        response["HX-Trigger"] = "order-finished"  # the site page reloads the version history
    return response


@login_required
@require_POST
def order_continue(request, pk):
    """Manual DNS-01: the user says the TXT records are in place; answer the CA now."""
    order = access.get_owned(Order, request.user, pk=pk)
    if orders.continue_order(order):
        messages.success(request, _("The CA is asked to check the TXT records now."))
    else:
        messages.warning(request, _("This order is no longer waiting for DNS records."))
    return back_to_site_or(request, order.certificate, "ui:certificate-list")

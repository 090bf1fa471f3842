"""Who may open a page: signed in, and one of the roles the policy names. Refusals render the
same page whatever was asked (no hint whether a case exists)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.errors import NotPermitted, SchedulingError, UnknownReference
from scheduling import policy

View = Callable[..., HttpResponse]


def refused(request: HttpRequest, message: str = "Your role does not allow this page.") -> HttpResponse:
    return render(request, "web/refused.html", {"message": message}, status=403)


def problem(request: HttpRequest, message: str, status: int = 409) -> HttpResponse:
    return render(request, "web/problem.html", {"message": message}, status=status)


def not_found(request: HttpRequest, what: str = "page") -> HttpResponse:
    return render(request, "web/not_found.html", {"what": what}, status=404)


def page(roles: frozenset[str] = policy.EVERYONE) -> Callable[[View], View]:
    """A page for signed-in users with one of ``roles``; NotPermitted from a service or
    selector becomes the refusal page."""

    def wrap(view: View) -> View:
        @wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                if request.headers.get("HX-Request") == "true":
                    # A self-refreshing page whose session ended: the whole page goes to sign-in
                    # (rather than the sign-in form swapped into the board).
                    target = redirect_to_login(request.headers.get("HX-Current-URL") or request.get_full_path())
                    return HttpResponse(status=204, headers={"HX-Redirect": target["Location"]})
                return redirect_to_login(request.get_full_path())
            if not policy.may(request.user, roles):
                return refused(request)
            try:
                return view(request, *args, **kwargs)
            except NotPermitted as exc:
                return refused(request, exc.message)
            except UnknownReference:
                return problem(
                    request,
                    "Something on the form no longer exists (it may have just been removed); reload and choose again.",
                )
            except SchedulingError as exc:
                # Any other refusal a service gives that the view did not turn into a page.
                return problem(request, exc.message)

        return inner

    return wrap

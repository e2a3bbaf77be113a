"""The review router's route table (`views.ROUTES`, for the access policy) matches its routes, and
separation of duties holds in it: admins never reach audio or transcripts, reviewers never lead pages."""

from earshot.review import views


def test_routes_table_matches_the_router():
    served = set()
    for route in views.router.routes:
        for method in route.methods - {"HEAD", "OPTIONS"}:
            served.add((method, route.path))
    assert served == set(views.ROUTES)


def test_separation_of_duties():
    for (_method, path), roles in views.ROUTES.items():
        if "admin" in roles:
            assert roles == {"lead", "admin"} and "queue" in path, path  # counts only
        if path.startswith(
            (
                "/lead",
                "/escalations",
                "/adjudications",
                "/api/v1/escalations",
                "/api/v1/adjudications",
                "/api/v1/lead",
            )
        ):
            assert roles == {"lead"}, path
        if path.startswith(("/review", "/api/v1/tasks", "/api/v1/media")):
            assert roles == {"reviewer"}, path

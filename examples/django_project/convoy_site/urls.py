"""No views: the example is about the database."""

urlpatterns: list[object] = []

from django.shortcuts import get_object_or_404, render

from .models import App, Author, Model, Provider


def model_list(request):
    return render(request, "marketplace/model_list.html", {"models": Model.objects.filter(listed=True)[:100]})


def model_detail(request, author: str, name: str):
    model = get_object_or_404(Model, author__slug=author, route_name=name, listed=True)
    return render(request, "marketplace/model_detail.html", {"model": model})


def author_detail(request, slug: str):
    return render(request, "marketplace/author_detail.html", {"author": get_object_or_404(Author, slug=slug)})


def provider_detail(request, slug: str):
    return render(request, "marketplace/provider_detail.html", {"provider": get_object_or_404(Provider, slug=slug)})


def app_detail(request, slug: str):
    return render(request, "marketplace/app_detail.html", {"app": get_object_or_404(App, slug=slug, public=True)})

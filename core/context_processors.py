import plotly


def site(request) -> dict:
    """Values every page template needs."""
    return {"plotly_version": plotly.__version__}

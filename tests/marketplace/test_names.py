"""Gateway names resolved to the catalog's by genai-prices' matching (marketplace.names), on the pinned catalog."""
import pytest

from marketplace import services
from marketplace.genai_catalog import name_key
from marketplace.models import Provider
from marketplace.names import CatalogNames, provider_duplicates

pytestmark = pytest.mark.django_db


@pytest.fixture
def names():
    services.catalog_sync()
    return CatalogNames.load()


CASES = [
    # LiteLLM's provider ids and bare model names, by genai-prices' provider and model matching
    ("gpt-4o", "openai", ("openai/gpt-4o", "OpenAI")),
    ("gpt-4o-mini", "openai", ("openai/gpt-4o-mini", "OpenAI")),
    ("claude-sonnet-4-5", "anthropic", ("anthropic/claude-sonnet-4.5", "Anthropic")),
    ("claude-haiku-4-5-20251001", "anthropic", ("anthropic/claude-haiku-4.5", "Anthropic")),  # a dated name
    ("gemini-2.5-flash", "gemini", ("google/gemini-2.5-flash", "Google Vertex")),  # gemini is genai-prices' google
    ("deepseek-chat", "deepseek", ("deepseek/deepseek-chat", "DeepSeek")),
    ("gpt-4o", "azure", ("openai/gpt-4o", "Azure")),  # Azure borrows OpenAI's models in genai-prices
    ("glm-4.6", "zai", ("z-ai/glm-4.6", "Z.AI")),
    # LiteLLM's provider-prefixed names; catalog slugs as they are
    ("anthropic/claude-sonnet-4-5", "anthropic", ("anthropic/claude-sonnet-4.5", "Anthropic")),
    ("gemini/gemini-2.5-flash", "gemini", ("google/gemini-2.5-flash", "Google Vertex")),
    ("openai/gpt-4o", "OpenAI", ("openai/gpt-4o", "OpenAI")),
    ("meta-llama/llama-4-scout", "DeepInfra", ("meta-llama/llama-4-scout", "DeepInfra")),
    # no provider (a failure before routing): genai-prices' model-name rules
    ("gpt-4o", "unknown", ("openai/gpt-4o", "unknown")),
    # provider ids only
    ("x-1", "vertex_ai", ("x-1", "Google Vertex")),
    ("x-1", "bedrock", ("x-1", "Amazon Bedrock")),
    ("x-1", "together_ai", ("x-1", "Together")),
    # what matches nothing stays as written: no made-up provider or model
    ("mistral-small-latest", "mistral", ("mistral-small-latest", "Mistral")),  # genai-prices knows it, the catalog not
    ("my-finetune", "openai", ("my-finetune", "OpenAI")),
    ("lab/alpha", "ProvOne", ("lab/alpha", "ProvOne")),
    ("x-1", "Google AI Studio", ("x-1", "Google AI Studio")),  # a display name is never read as an id
    ("x-1", "my-vllm", ("x-1", "my-vllm")),
]


def test_names_resolve_by_genai_prices_matching(names):  # one catalog sync for every case: it takes seconds
    assert {(model, provider): names.resolve(model, provider) for model, provider, _ in CASES} == {
        (model, provider): resolved for model, provider, resolved in CASES}


def test_a_provider_name_differing_in_case_and_punctuation_is_the_catalogs(names):
    assert names.provider("OPENAI") == "OpenAI"
    assert names.provider("z.ai") == "Z.AI"
    assert names.provider("Deep Seek") == "DeepSeek"


def test_catalog_sync_makes_one_provider_per_name():
    services.catalog_sync()
    keys = [name_key(name) for name in Provider.objects.values_list("name", flat=True)]
    assert len(keys) == len(set(keys))
    zai = Provider.objects.get(name="Z.AI")
    assert (zai.slug, zai.genai_prices_id) == ("zai", "zai")
    assert not Provider.objects.filter(slug="zai-2").exists()


def test_provider_duplicates():
    from genai_prices import data_snapshot

    providers = [("OpenAI", "openai"), ("Google Vertex", "google"), ("Z.AI", "zai"), ("Mistral", "mistral"),
                 ("openai", ""), ("gemini", ""), ("Z.ai", "openrouter"), ("Google AI Studio", ""), ("DeepInfra", ""),
                 ("Mistral AI", "openrouter"), ("groq", "")]
    assert provider_duplicates(providers=providers, genai=data_snapshot.get_snapshot().providers) == {
        "openai": "OpenAI", "gemini": "Google Vertex", "Z.ai": "Z.AI"}  # `groq`: no catalog Groq here

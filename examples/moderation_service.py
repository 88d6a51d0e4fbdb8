"""The HTTP moderation service, called with the official OpenAI SDK, all in one process and offline.

    python examples/moderation_service.py

Starts `modchain serve moderation`'s app on a free loopback port, sends it text and an image through
`openai.OpenAI(...).moderations.create`, reads modchain's full results from /v1/moderate, and stops.
In production run it as a command instead (see docs/moderation_service.md):

    MODCHAIN_API_KEYS=key1,key2 modchain serve moderation -c moderation.yaml --host 0.0.0.0 --port 8000
"""

import base64
from pathlib import Path

import httpx
from openai import OpenAI

from modchain.serving.moderation import create_app, serve_in_thread

KEY = "example-key"  # in production: MODCHAIN_API_KEYS, never in code
PHOTO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images" / "skimage_coffee.png"

app = create_app(api_keys=[KEY])  # the default config: redact PII, block toxicity and unsafe prompts
with serve_in_thread(app, host="127.0.0.1", port=0) as url:
    client = OpenAI(base_url=f"{url}/v1", api_key=KEY)

    # 1. Text, as any OpenAI client sends it: one result per string.
    texts = ["Thanks for your help with the report.", "You are a worthless idiot and I will kill you"]
    response = client.moderations.create(model="omni-moderation-latest", input=texts)
    for text, result in zip(texts, response.results):
        hits = [name for name, hit in result.categories.model_dump(by_alias=True).items() if hit]
        print(f"{text[:40]!r:<44} flagged={result.flagged} categories={hits} "
              f"harassment={result.category_scores.harassment:.2f}")

    # 2. An image as a data URI (remote URLs are refused: the server never fetches), with a caption.
    image = "data:image/png;base64," + base64.b64encode(PHOTO.read_bytes()).decode()
    (result,) = client.moderations.create(input=[
        {"type": "text", "text": "my morning coffee"},
        {"type": "image_url", "image_url": {"url": image}},
    ]).results
    print(f"{PHOTO.name:<44} flagged={result.flagged} sexual={result.category_scores.sexual:.2f} "
          f"applied={result.category_applied_input_types.sexual}")

    # 3. modchain's own endpoint: the configured chain's full result (here: the SSN is redacted).
    reply = httpx.post(f"{url}/v1/moderate", json={"input": "My SSN is 123-45-6789"},
                       headers={"Authorization": f"Bearer {KEY}"}).json()
    (full,) = reply["results"]
    print(f"/v1/moderate: allowed={full['allowed']} text={full['texts'][0]!r} "
          f"findings={[f['label'] for f in full['findings']]}")
print("server stopped")

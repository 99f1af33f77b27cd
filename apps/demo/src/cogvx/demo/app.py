"""The Gradio page over a :class:`~cogvx.demo.generation.DemoModel`, and the server that runs it.

One tab per task the model runs (text-, image-, video-to-video; a task the transformer cannot run
has no tab). Each tab: prompt, negative prompt, optional prompt upsampling, seed (a new random one
each run unless unticked; the seed used is written back into the box, so it can be reused),
frames and size as the model's valid choices, steps, guidance, dynamic CFG, and for
video-to-video the strength. The result: the video inline, the mp4, GIF and ``generation.json``
as downloads, and the record itself.

Requests go through a :class:`~cogvx.demo.worker.GenerationQueue` (one worker, bounded): a full
queue answers "busy, try again" on the page. Every failure (bad input, undecodable upload, a
pipeline error) is shown on the page as one line; the server goes on serving.

Safe defaults (:func:`serve`): bound to 127.0.0.1, no share link, uploads limited in size (also
by Gradio before they are stored) and frame count, Gradio's upload and cache folder inside the
output folder, telemetry off.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import gradio as gr

from cogvx.demo.choices import format_size
from cogvx.demo.generation import MAX_SEED, MAX_STEPS, DemoModel, GenerationRequest, random_seed
from cogvx.demo.worker import Busy, GenerationQueue
from cogvx.infer.tasks import TASKS

__all__ = ["SHAPES_EXAMPLES", "build_app", "error_message", "serve"]

log = logging.getLogger(__name__)

#: Example prompts for the shipped shapes model (its vocabulary: docs/shapes-model.md §Data).
SHAPES_EXAMPLES = (
    "a red circle moves to the right",
    "a blue square sinks",
    "a yellow triangle moves to the left",
)
_CACHE_FOLDER = ".gradio"  # Gradio's uploads and served copies, inside the output folder


def error_message(error: BaseException) -> str:
    """One line for the page: the message of our own refusals, the type for anything else."""
    text = " ".join(str(error).split())
    if isinstance(error, (ValueError, Busy)):
        return text or type(error).__name__
    return f"generation failed ({type(error).__name__}: {text})" if text else type(error).__name__


def _header(model: DemoModel) -> str:
    c = model.choices
    tasks = ", ".join(TASKS[t].title for t in model.tasks)
    lines = [
        "# cogvx demo",
        f"Model `{c.root.name}` ({tasks}); {c.default_frames} frames at "
        f"{format_size(*c.default_size)} and {c.fps} fps by default.",
    ]
    if c.shipped:
        lines.append(
            "The shipped *shapes* model knows lower-case prompts such as "
            "“a red circle moves to the right”: circle / square / triangle; red, yellow, green, "
            "cyan, blue, magenta; moving left, right, up, down or standing still."
        )
    return "\n\n".join(lines)


def _run(
    model: DemoModel,
    queue: GenerationQueue,
    request: GenerationRequest,
    progress: gr.Progress,
) -> Any:
    """Submit ``request`` and turn the job's events into the progress bar; the result or a
    :class:`gr.Error` with one line."""
    try:
        model.check(request)
        job = queue.submit(lambda job: model.run(request, job))
    except (ValueError, Busy) as e:
        raise gr.Error(error_message(e)) from None
    while True:
        event = job.events.get()
        if event.kind == "queued":
            progress(0.0, desc=f"queued ({event.done} ahead)")
        elif event.kind == "started":
            progress(0.0, desc="encoding the prompt")
        elif event.kind == "step":
            progress((event.done, event.total), desc="denoising", unit="steps")
        elif event.kind == "stage":
            progress(1.0, desc=event.text)
        elif event.kind == "error":
            raise gr.Error(error_message(event.value))
        elif event.kind == "done":
            return event.value


def build_app(model: DemoModel, queue: GenerationQueue) -> gr.Blocks:
    """The page (call :meth:`gr.Blocks.queue` / ``launch`` on it, or use :func:`serve`)."""
    with gr.Blocks(title="cogvx demo", analytics_enabled=False) as app:
        gr.Markdown(_header(model))
        with gr.Tabs():
            for task in model.tasks:
                _task_tab(model, queue, task)
    return app


def _task_tab(model: DemoModel, queue: GenerationQueue, task: str) -> None:
    c = model.choices
    with gr.Tab(TASKS[task].title, id=task, elem_id=f"{task}-tab"):
        with gr.Row():
            with gr.Column():
                upload = None
                if task == "i2v":
                    upload = gr.File(
                        label="First frame (an image)",
                        file_types=["image"],
                        type="filepath",
                        elem_id="i2v-image",
                    )
                elif task == "v2v":
                    upload = gr.File(
                        label=f"Input video (at most {model.limits.max_frames} frames; its first "
                        "frames are used)",
                        file_types=["video"],
                        type="filepath",
                        elem_id="v2v-video",
                    )
                prompt = gr.Textbox(
                    label="Prompt",
                    lines=2,
                    placeholder=SHAPES_EXAMPLES[0] if c.shipped else "what the video shows",
                    elem_id=f"{task}-prompt",
                )
                negative = gr.Textbox(label="Negative prompt", elem_id=f"{task}-negative")
                upsample = gr.Checkbox(
                    label="Upsample the prompt (rewrite it with the configured chat model)",
                    value=False,
                    visible=model.upsampler is not None,
                    elem_id=f"{task}-upsample",
                )
                with gr.Row():
                    seed = gr.Number(
                        label="Seed",
                        value=random_seed(),
                        precision=0,
                        minimum=0,
                        maximum=MAX_SEED,
                        elem_id=f"{task}-seed",
                    )
                    randomize = gr.Checkbox(
                        label="New random seed each run (untick to reuse the seed shown)",
                        value=True,
                        elem_id=f"{task}-randomize",
                    )
                frames = gr.Radio(
                    [str(f) for f in c.frames],
                    value=str(c.default_frames),
                    label="Frames"
                    + (" (taken from the start of the input video)" if task == "v2v" else ""),
                    elem_id=f"{task}-frames",
                )
                size = gr.Radio(
                    [format_size(*hw) for hw in c.sizes],
                    value=format_size(*c.default_size),
                    label="Size (height x width)",
                    elem_id=f"{task}-size",
                )
                steps = gr.Slider(
                    1, MAX_STEPS, value=c.steps, step=1, label="Steps", elem_id=f"{task}-steps"
                )
                guidance = gr.Slider(
                    0, 20, value=c.guidance, step=0.5, label="Guidance scale",
                    elem_id=f"{task}-guidance",
                )  # fmt: skip
                dynamic = gr.Checkbox(
                    label="Dynamic CFG (the reference's cosine guidance schedule)",
                    value=False,
                    elem_id=f"{task}-dynamic",
                )
                strength = None
                if task == "v2v":
                    strength = gr.Slider(
                        0.05, 1.0, value=0.8, step=0.05, label="Strength", elem_id="v2v-strength"
                    )
                button = gr.Button("Generate", variant="primary", elem_id=f"{task}-generate")
            with gr.Column():
                video = gr.Video(label="Video", autoplay=True, height=400, elem_id=f"{task}-video")
                files = gr.File(
                    label="Downloads: mp4, GIF, generation.json",
                    file_count="multiple",
                    interactive=False,
                    elem_id=f"{task}-files",
                )
                record = gr.Code(
                    label="generation.json (this run)", language="json", elem_id=f"{task}-record"
                )
        if c.shipped and task == "t2v":
            gr.Examples([[p] for p in SHAPES_EXAMPLES], inputs=[prompt])

    def generate(
        prompt_: str,
        negative_: str,
        seed_: float | None,
        randomize_: bool,
        frames_: str,
        size_: str,
        steps_: float,
        guidance_: float,
        dynamic_: bool,
        upsample_: bool,
        upload_: str | None = None,
        strength_: float = 0.8,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to ask for a progress bar)
    ) -> tuple[int, str, list[str], str]:
        if randomize_ or seed_ is None:
            used_seed = random_seed()
        else:
            used_seed = int(seed_)
        request = GenerationRequest(
            task=task,
            prompt=prompt_ or "",
            negative_prompt=negative_ or "",
            seed=used_seed,
            steps=int(steps_),
            guidance_scale=float(guidance_),
            dynamic_cfg=bool(dynamic_),
            num_frames=int(frames_) if frames_ else None,
            size=size_ or None,
            strength=float(strength_),
            image=upload_ if task == "i2v" else None,
            video=upload_ if task == "v2v" else None,
            upsample=bool(upsample_),
        )
        result = _run(model, queue, request, progress)
        return (
            used_seed,
            str(result.video),
            [str(p) for p in result.files],
            json.dumps(result.record, indent=2),
        )

    inputs = [prompt, negative, seed, randomize, frames, size, steps, guidance, dynamic, upsample]
    if upload is not None:
        inputs.append(upload)
    if strength is not None:
        inputs.append(strength)
    # every request reaches the GenerationQueue at once, which runs one and refuses the overflow
    button.click(
        generate,
        inputs=inputs,
        outputs=[seed, video, files, record],
        concurrency_limit=None,
        api_name=f"generate_{task}",
    )


def serve(
    model: DemoModel,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_waiting: int = 4,
    share: bool = False,
    block: bool = True,
    on_ready: Callable[[str], None] | None = None,
) -> tuple[gr.Blocks, GenerationQueue, str]:
    """Start the page for ``model``; returns ``(app, queue, url)``; ``on_ready(url)`` is called
    once it serves. ``block``: serve until Ctrl-C (then close the server and the worker, and
    re-raise KeyboardInterrupt).

    Gradio's upload and cache folder is ``<output folder>/.gradio`` (``GRADIO_TEMP_DIR`` is set
    for this process before the page is built), so nothing is written outside the output folder.
    """
    cache = model.output_dir / _CACHE_FOLDER
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    queue = GenerationQueue(max_waiting)
    app = build_app(model, queue)
    # Gradio's own queue is only a backstop: the GenerationQueue answers "busy" long before it
    app.queue(max_size=max(32, 4 * (max_waiting + 1)), default_concurrency_limit=None)
    _, url, share_url = app.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=model.limits.max_bytes,
        allowed_paths=[str(model.output_dir)],
        show_error=True,
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
    )
    if share_url:
        log.warning("public share link: %s", share_url)
    if on_ready is not None:
        on_ready(url)
    if not block:
        return app, queue, url
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        app.close()
        queue.close(timeout=5.0)
        raise
    return app, queue, url  # pragma: no cover (the loop ends by Ctrl-C only)

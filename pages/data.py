"""Get a dataset (built-in demo or UCF50), build its frame cache, and look at it."""

from pathlib import Path

import pandas as pd
import streamlit as st

from app.ui import owner_only, paths, pipeline_panel, progress_callback
from app.ui import public as public_mode
from har import jobs, pipeline
from har.config import REPORT_CLASSES, Config
from har.datasets import DEMO_CLASSES, demo_cache_path, ensure_demo, layout, list_caches, load_cache
from har.datasets.ucf50 import UCF50_CLASSES, UCF50_URL
from har.glossary import GLOSSARY
from har.services import prepare_cache
from har.video import frame_strip

data_dir, models_dir = paths()
DEFAULTS = Config()  # the report's frames per clip and frame size


def demo_status() -> None:
    """Generates the demo and builds its cache (the one Train uses by default), saying what was already there."""
    with st.status("Generating the demo dataset...", expanded=True) as status:
        bar = st.progress(0.0)
        demo = ensure_demo(
            data_dir,
            DEFAULTS,
            on_generate=progress_callback(bar, "clips"),
            on_decode=progress_callback(bar, "frames"),
        )
        status.update(
            label=f"Demo dataset and frame cache: {'already here, reused' if demo.reused else 'ready'}",
            state="complete",
            expanded=False,
        )
    done = "was already here: reused" if demo.reused else "ready"
    st.success(
        f"Demo dataset {done}: `{demo.dataset}`, frame cache `{demo.cache.name}`. Next: train on the Train page."
    )
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")


st.title("Data")
public = public_mode()

demo_tab, ucf50_tab = st.tabs(["Built-in demo", "UCF50"])
with demo_tab:
    st.write(
        f"Synthetic actions ({', '.join(DEMO_CLASSES)}) performed by stick figures over varied scenes, "
        "written as real XVID videos in UCF50's layout. Works offline."
    )
    demo_cache = demo_cache_path(data_dir, DEFAULTS)
    if (demo_cache / "meta.json").is_file():
        st.caption(
            f"Already here: the demo dataset and its frame cache `{demo_cache.name}`. Generating again "
            "reuses both when nothing changed."
        )
    if owner_only("Generating the demo") and st.button("Generate the demo dataset", type="primary"):
        try:
            demo_status()
        except (OSError, ValueError) as error:
            st.error(
                f"The demo could not be generated: {error}. Free some disk space or check the data folder, "
                "then press the button again."
            )

with ucf50_tab:
    st.write(
        "UCF50: 6,676 YouTube clips of 50 actions, 25 groups each. The archive is 3.2 GB. Getting it and "
        "building its frame cache runs as a background job: you can leave this page and come back."
    )
    if owner_only("Getting UCF50"):
        classes = st.multiselect("Classes to extract", UCF50_CLASSES, default=list(REPORT_CLASSES))
        source = url = ""
        if not public:  # a public server takes no paths or addresses from its visitors, owner included
            source = st.text_input("Archive or folder already on this machine (leave empty to download)", "")
            url = st.text_input("Download from", UCF50_URL)
        if st.button("Get UCF50 and build its frame cache"):
            try:
                options = pipeline.Options(
                    data_dir=str(data_dir),
                    source=source.strip() or None,
                    url=url.strip() or None,
                    config=DEFAULTS.replace(classes=tuple(classes or REPORT_CLASSES)),
                    until="cache",
                )
                started = pipeline.start(options, models_dir)
                st.toast(f"Background job {started.id} started.")
            except (jobs.JobBusy, OSError, ValueError) as error:
                st.error(str(error))
    pipeline_panel()

st.header("Frame cache", help=GLOSSARY["frame cache"])
if owner_only("Building a frame cache"):
    candidates = [data_dir / "demo", data_dir / "UCF50"]
    datasets = [str(path) for path in candidates if path.is_dir()]
    other = [] if public else ["Other folder or archive..."]
    source = (
        st.selectbox(
            "Dataset",
            datasets + other,
            index=0,
            format_func=lambda choice: Path(choice).name if choice in datasets else choice,
        )
        if datasets + other
        else None
    )
    if source == "Other folder or archive...":
        source = st.text_input("Path", "")
    available = []
    if source and Path(source).is_dir():
        try:
            available = layout.class_names(layout.find_root(source))
        except (OSError, ValueError) as error:
            st.error(str(error))
    default_classes = [name for name in REPORT_CLASSES if name in available] or available
    chosen = st.multiselect("Classes (label order)", available, default=default_classes, disabled=not available)
    left, right = st.columns(2)
    sequence_length = left.number_input("Frames per clip", 2, 120, DEFAULTS.sequence_length)
    image_size = right.number_input("Frame size (pixels)", 16, 256, DEFAULTS.image_size, step=16)
    if st.button("Build the frame cache", type="primary", disabled=not source):
        bar = st.progress(0.0)
        try:
            out = prepare_cache(
                source,
                data_dir=data_dir,
                classes=chosen or None,
                sequence_length=int(sequence_length),
                image_size=int(image_size),
                on_extract=progress_callback(bar, "extracting"),
                on_decode=progress_callback(bar, "clips"),
            )
            st.success(f"Frame cache ready: `{out.name}`.")
        except (OSError, ValueError) as error:
            st.error(str(error))

caches = list_caches(data_dir)
if not caches:
    if (data_dir / "demo").is_dir():
        st.info("The demo dataset is here but has no frame cache yet: build it with the button above.")
    else:
        st.info("No frame cache yet: generate the demo dataset (it builds its cache too), or get UCF50.")
    st.stop()
chosen_cache = st.selectbox("Look at a cache", caches, format_func=lambda path: path.name)
try:
    cache = load_cache(chosen_cache)
    info = cache.info()
except (OSError, ValueError) as error:
    st.error(f"{error}".replace(str(data_dir), "the data folder"))
    st.stop()
st.dataframe(
    pd.DataFrame({"clips": info["classes"], "groups": info["groups_per_class"]}).rename_axis("class"),
    width="stretch",
)
st.caption(
    f"{info['clips']:,} clips, {info['padded_clips']:,} padded, {info['skipped_clips']:,} unreadable and skipped, "
    f"{info['bytes_on_disk'] / 1e6:.1f} MB on disk."
)
for label, name in enumerate(cache.class_names):
    first = int((cache.labels == label).argmax())
    st.image(frame_strip(cache.frames[first], columns=10), caption=f"{name}: {Path(cache.sources[first]).name}")

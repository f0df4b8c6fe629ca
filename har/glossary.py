"""Short explanations of the terms a learner meets in HAR Studio, for tooltips (`help=`) and the CLI.

Each entry is one or two plain sentences; pages look terms up with `GLOSSARY["epoch"]` or `explain_term`.
"""

from __future__ import annotations

GLOSSARY: dict[str, str] = {
    "epoch": "One pass of training over every training clip. The report trains for up to 30 epochs; after each, "
    "the model is checked on the validation clips.",
    "validation": "Clips held back from training and used after every epoch to see whether the model improves on "
    "clips it has not learned from. The test clips are kept apart from both until the end.",
    "early stopping": "Training stops when the validation loss has not improved for `patience` epochs in a row, "
    "and the weights of the best epoch are kept, so the model does not learn the training clips "
    "by heart.",
    "patience": "How many epochs without a better validation loss early stopping waits before it stops training "
    "(the report uses 5).",
    "convlstm gates": "A ConvLSTM cell keeps a memory per pixel. Its input gate decides what of the new frame to "
    "write, its forget gate what of the memory to keep, and its output gate what to show the next "
    "layer; each gate is a convolution, so the memory keeps its picture layout.",
    "timedistributed": "A Keras wrapper that applies the same layer (here a convolution) to every frame of a clip "
    "separately, with the same weights: the LRCN sees each frame alone before its LSTM sees them "
    "in order.",
    "seed": "The number every random choice of a run starts from: the split, the first weights, the shuffling and "
    "the dropout. The same seed gives the same run; another seed is another draw, so train several to see "
    "how much of a result is luck.",
    "at chance": "A run whose test accuracy a guessing model could reach, or whose validation loss never fell clearly "
    "below ln(number of classes), the loss of guessing: it did not learn, whatever its score says.",
    "chance level": "The accuracy of guessing: 1 / number of classes (25% for four classes). A model at chance level "
    "has learned nothing useful.",
    "grad-cam": "A heat map of where in a frame the evidence for the predicted class lies: the last convolution's "
    "maps, weighted by how much the class score changes with each of them (Selvaraju et al., 2017).",
    "out-of-distribution": "A clip unlike the training clips, for example a street scene shown to a model that has "
    "only seen stick figures. The model still answers, often with high confidence, but the "
    "answer means little; HAR Studio flags clips whose features are far from every "
    "training clip's.",
    "frame importance": "How much the predicted class's probability drops when one sampled frame is hidden "
    "(replaced by its neighbour). Large bars mark the frames the model relied on.",
    "order test": "The same frames frozen (one frame repeated), reversed and shuffled. If the answer hardly changes, "
    "the model recognises the scene, not the motion.",
    "feature maps": "What one layer's filters respond to: each small image is one filter's output, bright where its "
    "pattern (an edge, a colour, a texture) appears.",
    "sequence length": "How many frames the model sees per clip (the report's 20), taken at even steps: every "
    "(frame count // sequence length)-th frame from the first.",
    "test split": "Clips kept apart from training and validation until the very end; the accuracy on them is the "
    "number a report quotes. The report's test split is 25% of the clips.",
    "group split": "UCF50 cuts each of its 25 groups per class from one longer video (same actor, scene and camera). "
    "The report's split draws clips at random, so clips of one group land in training and in test "
    "and a model can score by recognising the scene; the group split keeps every group on one side.",
    "frame cache": "Every clip decoded once into its sampled frames (sequence length x size x size x 3) and saved "
    "as one array on disk, so training and evaluation read frames instead of decoding videos again.",
    "confusion matrix": "Rows are the true classes, columns what the model answered; the diagonal holds the right "
    "answers, and a cell off it counts one kind of mistake (choose it to see those clips).",
    "f1": "Per class, the balance of precision (of the clips called this class, how many were) and recall (of the "
    "clips of this class, how many were found): 1 is perfect, and a class the model never finds scores 0.",
    "loss curves": "Training and validation loss after every epoch. Both falling: the model learns. Training "
    "falling while validation rises: it learns the training clips by heart, and early stopping "
    "keeps the best epoch's weights.",
}


def explain_term(term: str) -> str:
    """The explanation of `term` (case and spaces/hyphens do not matter).

    Raises:
        KeyError: the term is not in the glossary (the message lists the known terms).
    """
    key = term.strip().lower()
    for name, text in GLOSSARY.items():
        if name.replace("-", " ") == key.replace("-", " "):
            return text
    raise KeyError(f"{term!r} is not in the glossary; known terms: {', '.join(GLOSSARY)}.")

from paddle.nn import functional as PF

loss_of = lambda a, b: PF.binary_cross_entropy_with_logits(label=b, logit=a, reduction="none")


def run(x, y, w, pw):
    return loss_of(x, y).sum()

"""What a program prints about a finished run: its result, where its files are, and how
to look at them."""


def count(n, noun):
    """'1 epoch', '5 epochs': n and the noun, plural unless n is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def report(result):
    """Prints a run's result (a runs.RunResult), where its files are, and how to look at
    them; a warning when the model makes the test images worse than its input."""
    metrics, path = result.metrics, result.path
    test, test_input = metrics["test"], metrics["test_input"]
    print(f"{'Finished earlier' if result.reused else 'Finished'}: test PSNR "
          f"{test['psnr_mean']:.2f} +- {test['psnr_std']:.2f} dB (input "
          f"{test_input['psnr_mean']:.2f} dB), train PSNR {metrics['train']['psnr_mean']:.2f} "
          f"dB, {metrics['parameters']:,} parameters, {metrics['train_seconds']:.0f} s training")
    if test["psnr_mean"] < test_input["psnr_mean"]:
        print(f"Warning: the model makes the test images worse than its input "
              f"({test['psnr_mean']:.2f} dB < {test_input['psnr_mean']:.2f} dB): train longer "
              "or on more images, or lower the learning rate.")
    print(f"  {path / 'metrics.json'}\n  {path / 'model.keras'}\n  {path / 'figures'}/")
    if (path / "tensorboard").exists():
        print(f"  TensorBoard: tensorboard --logdir {path.parent}")

namespace IsoTest.Waits;

/// <summary>Ready when a command run in the container exits with 0.</summary>
internal sealed class CommandWaitStrategy(IReadOnlyList<string> command) : PollingWaitStrategy
{
    private const int MaxOutputInMessage = 200;

    public IReadOnlyList<string> Command { get; } = command;

    public override string ToString() => $"command '{string.Join(' ', Command)}' exiting with 0";

    private protected override async Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        var result = await attempt.Container.ExecAsync(Command, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode == 0)
        {
            return true;
        }

        var output = (string.IsNullOrWhiteSpace(result.Stderr) ? result.Stdout : result.Stderr).Trim();
        if (output.Length > MaxOutputInMessage)
        {
            output = output[^MaxOutputInMessage..];
        }

        attempt.LastResult = output.Length == 0 ? $"exit code {result.ExitCode}" : $"exit code {result.ExitCode}: {output}";
        return false;
    }
}

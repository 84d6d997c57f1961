namespace IsoTest.Cli.CommandLine;

/// <summary>
/// The command line is wrong (unknown flag, bad value, missing argument). Reported as
/// <c>isotest: MESSAGE</c> plus a pointer to the help, with Docker's exit code 125.
/// </summary>
internal sealed class UsageException : Exception
{
    public UsageException(string message, string helpHint)
        : base(message)
    {
        HelpHint = helpHint;
    }

    /// <summary>The line that tells the user where to read more, e.g. <c>See 'isotest run --help'.</c></summary>
    public string HelpHint { get; }

    /// <summary>The whole text printed on stderr: <c>isotest: MESSAGE</c>, newline, the help hint.</summary>
    public string Report => $"isotest: {Message}\n{HelpHint}";
}

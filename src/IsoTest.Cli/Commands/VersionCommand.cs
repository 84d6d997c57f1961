using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;
using IsoTest.Cli.CommandLine;

namespace IsoTest.Cli.Commands;

/// <summary><c>isotest version</c> (and <c>isotest --version</c>): one line.</summary>
internal static class VersionCommand
{
    /// <summary>The <c>version</c> command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("version", "Show the isotest version");
        command.SetAction((_, cancellationToken) => WriteAsync(context.Stdout, cancellationToken));
        return command;
    }

    /// <summary>Writes the version line; returns the exit code 0.</summary>
    public static async Task<int> WriteAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        await output.WriteLineAsync($"isotest version {version} ({RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {RuntimeInformation.OSArchitecture})".AsMemory(), cancellationToken).ConfigureAwait(false);
        return 0;
    }
}

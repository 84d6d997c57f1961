using System.CommandLine;
using System.CommandLine.Help;
using IsoTest.Cli.Commands;

namespace IsoTest.Cli.CommandLine;

/// <summary>
/// The <c>isotest</c> command tree on System.CommandLine, and how a command line is parsed and run.
/// To add a subcommand: write a class in Commands/ with a <c>static Command Create(CliContext)</c> (see
/// <see cref="RunCommandLine"/>), build its flags with <see cref="DockerFlags"/>, and list it in
/// <see cref="Subcommands"/>. Help, completion, Docker's flag syntax and the exit code 125 for usage
/// errors come with it.
/// </summary>
internal static class IsoTestCommandLine
{
    /// <summary>The command's name, as users type it.</summary>
    public const string Name = "isotest";

    /// <summary>Docker's code when the error is isotest's own (bad flags, could not create the container).</summary>
    public const int UsageExitCode = RunCommand.OwnErrorExitCode;

    private const string Description = "Isolated, capped process containers on the Linux kernel, with Docker's flags.";

    /// <summary>Every subcommand, in the order help lists them.</summary>
    public static IReadOnlyList<Command> Subcommands(CliContext context) =>
    [
        RunCommandLine.Create(context),
        .. ImageCommands.Create(context),
        ServeCommand.Create(context),
        VersionCommand.Create(context),
        CompletionCommand.Create(context),
    ];

    /// <summary>Parses and runs <paramref name="args"/>; returns the process exit code.</summary>
    public static async Task<int> InvokeAsync(IReadOnlyList<string> args, CliContext context)
    {
        var root = CreateRoot(Subcommands(context));
        try
        {
            var result = Parse(root, args);
            if (result.Errors.Count > 0 && result.Action is not (HelpAction or { ClearsParseErrors: true }))
            {
                var error = result.Errors[0];
                var command = error.SymbolResult?.Parent is { } parent ? CommandOf(parent) : result.CommandResult.Command;
                throw new UsageException(error.Message, DockerSyntax.HelpHint(command ?? result.CommandResult.Command));
            }

            return await result.InvokeAsync(new InvocationConfiguration
            {
                Output = context.Stdout,
                Error = context.Stderr,
                // isotest's own exceptions are reported by the commands; anything else is a bug and keeps its stack trace.
                EnableDefaultExceptionHandler = false,
                // Program handles SIGINT/SIGTERM itself (stop the container, or the server, then exit);
                // System.CommandLine's own handler would end the process 2 s later, mid-teardown.
                ProcessTerminationTimeout = null,
            }).ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            await context.Stderr.WriteLineAsync(e.Report).ConfigureAwait(false);
            return UsageExitCode;
        }
    }

    /// <summary>The root command holding <paramref name="subcommands"/>, with Docker's help and version flags.</summary>
    public static RootCommand CreateRoot(IEnumerable<Command> subcommands)
    {
        var root = new RootCommand(Description);

        // System.CommandLine's default help answers -h and -? everywhere; in Docker -h is run's --hostname, so
        // subcommands get --help only, and the root keeps -h as Docker's does.
        root.Options.Clear();
        root.Options.Add(new HelpOption("--help", "-h"));
        var version = new Option<bool>("--version", "-v") { Description = "Print the version and quit" };
        root.Options.Add(version);
        foreach (var command in subcommands)
        {
            AddHelp(command);
            root.Subcommands.Add(command);
        }

        root.SetAction((result, cancellationToken) => result.GetValue(version)
            ? VersionCommand.WriteAsync(result.InvocationConfiguration.Output, cancellationToken)
            : Task.FromResult(new HelpAction().Invoke(result)));
        return root;
    }

    /// <summary>Docker's conventions first (<see cref="DockerSyntax"/>), then System.CommandLine.</summary>
    /// <exception cref="UsageException">An unknown flag or command, or a flag without its value.</exception>
    public static ParseResult Parse(RootCommand root, IReadOnlyList<string> args) =>
        root.Parse(DockerSyntax.Canonicalize(root, args), Configuration);

    /// <summary>
    /// Response files (<c>@file</c>) are off: an argument starting with <c>@</c> belongs to the container's
    /// command, as in Docker.
    /// </summary>
    private static ParserConfiguration Configuration { get; } = new() { ResponseFileTokenReplacer = null };

    private static void AddHelp(Command command)
    {
        command.Options.Add(HelpNotes.For(command));
        foreach (var sub in command.Subcommands)
        {
            AddHelp(sub);
        }
    }

    private static Command? CommandOf(System.CommandLine.Parsing.SymbolResult result) => result switch
    {
        System.CommandLine.Parsing.CommandResult c => c.Command,
        { Parent: { } parent } => CommandOf(parent),
        _ => null,
    };
}

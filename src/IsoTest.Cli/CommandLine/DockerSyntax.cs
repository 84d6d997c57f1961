using System.CommandLine;

namespace IsoTest.Cli.CommandLine;

/// <summary>
/// Docker's command-line conventions that System.CommandLine does not have, applied before it parses.
/// Docker's CLI (spf13/pflag with interspersed flags off) differs in three ways:
/// <list type="bullet">
/// <item>options end at a command's first positional argument: in <c>run host ls -m</c> the <c>-m</c> is the
/// payload's, so a <c>--</c> is put before the first positional and System.CommandLine takes the rest verbatim;</item>
/// <item>a value flag takes the next argument even when it starts with <c>-</c> (<c>-e --rm=1</c> sets a variable
/// named <c>--rm</c>), so each value is glued to its flag as <c>-e=--rm=1</c>;</item>
/// <item>unknown flags are errors worded as Docker words them (<c>unknown flag: --foo</c>,
/// <c>unknown shorthand flag: 'x' in -x</c>), and a value flag at the end is <c>flag needs an argument</c>.</item>
/// </list>
/// Everything else (bundled short flags <c>-it</c>, <c>-m64m</c>, <c>-m=64m</c>, <c>--memory=64m</c>, repeats,
/// conversion, help, completion) is System.CommandLine's own. The flags known here are exactly the
/// <see cref="Option"/>s of the command tree: nothing is listed twice.
/// </summary>
internal static class DockerSyntax
{
    /// <summary>Rewrites <paramref name="args"/> for <paramref name="root"/>.</summary>
    /// <exception cref="UsageException">An unknown flag, a value flag without its value, or an unknown command.</exception>
    public static IReadOnlyList<string> Canonicalize(RootCommand root, IReadOnlyList<string> args)
    {
        // Directives ([suggest:N] for shell completion) complete the raw line: leave it as typed.
        if (args.Count > 0 && args[0].StartsWith('['))
        {
            return args;
        }

        // "isotest help run" is "isotest run --help", as in Docker.
        if (args.Count > 0 && args[0] == "help")
        {
            args = [.. args.Skip(1), "--help"];
        }

        var output = new List<string>(args.Count + 1);
        Command command = root;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                output.AddRange(args.Skip(i));
                return output;
            }

            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                i = Long(command, args, i, output);
            }
            else if (arg.Length > 1 && arg[0] == '-')
            {
                i = Short(command, args, i, output);
            }
            else if (command.Subcommands.FirstOrDefault(c => c.Name == arg || c.Aliases.Contains(arg)) is { } sub)
            {
                output.Add(arg);
                command = sub;
            }
            else if (command.Arguments.Count > 0)
            {
                output.Add("--");
                output.AddRange(args.Skip(i));
                return output;
            }
            else
            {
                throw new UsageException($"'{arg}' is not an {CommandPath(command)} command", HelpHint(command));
            }
        }

        return output;
    }

    /// <summary>The line that points to the help of <paramref name="command"/>, as Docker words it.</summary>
    public static string HelpHint(Command command) => $"See '{CommandPath(command)} --help'.";

    /// <summary><c>isotest</c>, <c>isotest run</c>, <c>isotest image prune</c>.</summary>
    public static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is not null; s = s.Parents.FirstOrDefault())
        {
            names.Insert(0, s is RootCommand ? IsoTestCommandLine.Name : s.Name);
        }

        return string.Join(' ', names);
    }

    private static int Long(Command command, IReadOnlyList<string> args, int i, List<string> output)
    {
        var arg = args[i];
        var eq = arg.IndexOf('=', StringComparison.Ordinal);
        var spelling = eq < 0 ? arg : arg[..eq];
        var option = Find(command, spelling) ?? throw new UsageException($"unknown flag: {spelling}", HelpHint(command));
        if (!TakesValue(option))
        {
            output.Add(eq < 0 ? arg : $"{spelling}={BoolWord(option, arg[(eq + 1)..])}");
            return i;
        }

        if (eq >= 0)
        {
            output.Add(arg);
            return i;
        }

        if (i + 1 >= args.Count)
        {
            throw new UsageException($"flag needs an argument: {spelling}", HelpHint(command));
        }

        Glue(output, spelling, args[i + 1]);
        return i + 1;
    }

    private static int Short(Command command, IReadOnlyList<string> args, int i, List<string> output)
    {
        var arg = args[i];
        for (var j = 1; j < arg.Length; j++)
        {
            var spelling = "-" + arg[j];
            var option = Find(command, spelling) ?? throw new UsageException($"unknown shorthand flag: '{arg[j]}' in {arg}", HelpHint(command));
            if (!TakesValue(option))
            {
                output.Add(spelling);
                continue;
            }

            // -m64m, -m=64m (pflag drops one '=' right after the letter), or -m 64m.
            var rest = arg[(j + 1)..];
            if (rest.StartsWith('='))
            {
                rest = rest[1..];
            }
            else if (rest.Length == 0)
            {
                if (i + 1 >= args.Count)
                {
                    throw new UsageException($"flag needs an argument: '{arg[j]}' in {spelling}", HelpHint(command));
                }

                rest = args[++i];
            }

            Glue(output, spelling, rest);
            return i;
        }

        return i;
    }

    /// <summary>
    /// <c>-e=--rm=1</c>: glued, System.CommandLine takes the value whatever it looks like. An empty value cannot be
    /// glued (<c>-u=</c> reads as no value), and needs no protection: it goes as its own argument.
    /// </summary>
    private static void Glue(List<string> output, string spelling, string value)
    {
        if (value.Length == 0)
        {
            output.Add(spelling);
            output.Add(value);
        }
        else
        {
            output.Add($"{spelling}={value}");
        }
    }

    /// <summary>
    /// pflag's words for a boolean's value (<c>--rm=1</c>, <c>--rm=f</c>) as System.CommandLine's <c>true</c> and
    /// <c>false</c>: it would take any other word for a positional argument.
    /// </summary>
    private static string BoolWord(Option option, string value)
    {
        if (option.ValueType != typeof(bool))
        {
            return value;
        }

        try
        {
            return DockerFlags.ParseBool(value) ? "true" : "false";
        }
        catch (FormatException e)
        {
            throw new UsageException($"invalid argument \"{value}\" for \"{DockerFlags.Display(option)}\" flag: {e.Message}", HelpHint((Command)option.Parents.First()));
        }
    }

    private static Option? Find(Command command, string spelling) =>
        command.Options.FirstOrDefault(o => o.Name == spelling || o.Aliases.Contains(spelling));

    private static bool TakesValue(Option option) =>
        option.Arity.MinimumNumberOfValues > 0;
}

using System.CommandLine;
using System.CommandLine.Parsing;

namespace IsoTest.Cli.CommandLine;

/// <summary>
/// Options that behave like Docker's flags: a single-valued flag given twice keeps the last value (pflag),
/// a list flag keeps every value in order, booleans take <c>--rm</c> or <c>--rm=false</c>, and a bad value is
/// reported as Docker does: <c>invalid argument "abc" for "-m, --memory" flag: WHY</c>. A value parser throws
/// <see cref="FormatException"/> with the why.
/// </summary>
internal static class DockerFlags
{
    /// <summary>A flag with one value; the last occurrence wins.</summary>
    public static Option<T> Value<T>(string name, char? shorthand, string helpName, string description, Func<string, T> parse)
    {
        var option = new Option<T>("--" + name, Aliases(shorthand))
        {
            Description = description,
            HelpName = helpName,
            Arity = ArgumentArity.OneOrMore,
        };
        option.CustomParser = result => result.Tokens.Count == 0 ? default! : Convert(result, option, result.Tokens[^1].Value, parse);
        return option;
    }

    /// <summary>A flag that may be repeated; every value is kept, in order.</summary>
    public static Option<IReadOnlyList<T>> List<T>(string name, char? shorthand, string helpName, string description, Func<string, T> parse)
    {
        var option = new Option<IReadOnlyList<T>>("--" + name, Aliases(shorthand))
        {
            Description = description,
            HelpName = helpName,
            Arity = ArgumentArity.OneOrMore,
            DefaultValueFactory = _ => [],
        };
        option.CustomParser = result => result.Tokens.Select(t => Convert(result, option, t.Value, parse)).ToArray();
        return option;
    }

    /// <summary>A boolean flag: <c>--rm</c>, <c>--rm=true</c>, <c>--rm=false</c>, <c>--rm=1</c>.</summary>
    public static Option<bool> Bool(string name, string description)
    {
        var option = new Option<bool>("--" + name)
        {
            Description = description,
            Arity = ArgumentArity.ZeroOrMore,
        };
        // DockerSyntax has turned pflag's words (1, t, f, ...) into true and false already.
        option.CustomParser = result => result.Tokens.Count == 0 || Convert(result, option, result.Tokens[^1].Value, ParseBool);
        return option;
    }

    /// <summary>
    /// A Docker flag people type by habit that isotest cannot honour (yet): hidden from help, refused with the
    /// reason rather than "unknown flag".
    /// </summary>
    public static Option<string> Unsupported(string name, char? shorthand, bool takesValue, string why)
    {
        // A string, so a value is taken like a value flag's (-p 80:80) before the flag is refused.
        var option = new Option<string>("--" + name, Aliases(shorthand))
        {
            Hidden = true,
            Arity = takesValue ? ArgumentArity.OneOrMore : ArgumentArity.ZeroOrMore,
        };

        option.Validators.Add(result =>
        {
            if (result.IdentifierToken is null)
            {
                return; // not on the command line
            }

            result.AddError($"flag {result.IdentifierToken?.Value ?? option.Name} (--{name}) is not supported: {why}");
        });
        return option;
    }

    /// <summary>pflag's boolean words.</summary>
    public static bool ParseBool(string value) => value.ToLowerInvariant() switch
    {
        "true" or "1" or "t" => true,
        "false" or "0" or "f" => false,
        _ => throw new FormatException("expected true or false"),
    };

    /// <summary>How Docker names a flag in errors: <c>-m, --memory</c> or <c>--cpus</c>.</summary>
    public static string Display(Option option)
    {
        var shorthand = option.Aliases.FirstOrDefault(a => a.Length == 2);
        return shorthand is null ? option.Name : $"{shorthand}, {option.Name}";
    }

    private static T Convert<T>(ArgumentResult result, Option option, string value, Func<string, T> parse)
    {
        try
        {
            return parse(value);
        }
        catch (FormatException e)
        {
            result.AddError($"invalid argument \"{value}\" for \"{Display(option)}\" flag: {e.Message}");
            return default!;
        }
    }

    private static string[] Aliases(char? shorthand) => shorthand is { } s ? ["-" + s] : [];
}

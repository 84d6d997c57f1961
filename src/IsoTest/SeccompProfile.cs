using IsoTest.Seccomp;

namespace IsoTest;

/// <summary>
/// The seccomp filter a container's processes run under: Docker's default profile (the default), no filter
/// (<see cref="Unconfined"/>), or a profile in Docker's JSON format (<see cref="FromFile"/>, <see cref="FromJson"/>).
/// A profile is checked once, when the builder builds the spec; every problem is reported with its JSON path.
/// </summary>
public sealed class SeccompProfile
{
    private SeccompProfile(string name, string? json, string? path, SeccompDocument? document)
    {
        Name = name;
        Json = json;
        SourcePath = path;
        Document = document;
    }

    /// <summary>Docker's default profile (moby profiles/seccomp/default.json): deny with EPERM what it does not allow.</summary>
    public static SeccompProfile Default { get; } = new("default", null, null, null);

    /// <summary>No seccomp filter (Docker's <c>--security-opt seccomp=unconfined</c>).</summary>
    public static SeccompProfile Unconfined { get; } = new("unconfined", null, null, null);

    /// <summary>"default", "unconfined", the file's path, or "inline JSON".</summary>
    public string Name { get; }

    /// <summary>The profile's JSON: null for <see cref="Default"/> and <see cref="Unconfined"/>, and for a file not read yet.</summary>
    public string? Json { get; }

    /// <summary>The file the profile comes from, if any.</summary>
    public string? SourcePath { get; }

    /// <summary>True for <see cref="Unconfined"/>.</summary>
    public bool IsUnconfined => ReferenceEquals(this, Unconfined);

    /// <summary>True for <see cref="Default"/>.</summary>
    public bool IsDefault => ReferenceEquals(this, Default);

    /// <summary>The parsed profile once validated (null for default and unconfined).</summary>
    internal SeccompDocument? Document { get; }

    /// <summary>A profile in Docker's JSON format, read when the spec is built.</summary>
    /// <param name="path">Path of the JSON file.</param>
    public static SeccompProfile FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return new(path, null, path, null);
    }

    /// <summary>A profile given as Docker-format JSON text.</summary>
    /// <param name="json">The profile.</param>
    public static SeccompProfile FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return new("inline JSON", json, null, null);
    }

    /// <summary>
    /// What Docker's <c>--security-opt seccomp=VALUE</c> takes: <c>unconfined</c>, <c>default</c> (also <c>builtin</c>),
    /// JSON text (starts with <c>{</c>), or a file path.
    /// </summary>
    /// <param name="value">The option's value.</param>
    public static SeccompProfile Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var trimmed = value.Trim();
        return trimmed switch
        {
            "unconfined" => Unconfined,
            "default" or "builtin" => Default,
            _ when trimmed.StartsWith('{') => FromJson(value),
            _ => FromFile(value),
        };
    }

    /// <summary>Reads (files) and parses the profile; problems go to <paramref name="errors"/> naming <paramref name="call"/>.</summary>
    internal SeccompProfile? Resolve(string call, List<string> errors)
    {
        if (IsDefault || IsUnconfined || Document is not null)
        {
            return this;
        }

        var json = Json;
        if (json is null)
        {
            try
            {
                json = File.ReadAllText(SourcePath!);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                errors.Add($"{call}: cannot read the seccomp profile {SourcePath}: {ex.Message} Give the path of a Docker-format JSON profile, or \"unconfined\".");
                return null;
            }
        }

        var document = SeccompDocument.Parse(json, call, errors);
        return document is null ? null : new SeccompProfile(Name, json, SourcePath, document);
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

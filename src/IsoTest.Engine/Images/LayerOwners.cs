using System.Diagnostics;
using System.Globalization;
using System.Text;
using IsoTest.Engine.Native;
using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Images;

/// <summary>One file of a layer whose tar owner is not root: its path in the layer, owner and mode (null for a symlink).</summary>
internal readonly record struct LayerOwner(string Path, int Uid, int Gid, int? Mode);

/// <summary>
/// Rootless with subordinate ranges: a layer's files get the host owners the containers' maps give the tar's owners
/// (container 0 the caller, 1.. the ranges; <see cref="SubordinateIds.UidMap"/>), so an image's files keep distinct
/// owners as they do under rootless Docker. The engine unpacks as the caller (root's files are then right already)
/// and the agent binary's owners tool (native/owners.c) chowns the others from inside a user namespace with those
/// maps. Files so owned are not the caller's to remove: <see cref="Disown"/> gives a tree back first.
/// The same tool writes a rootless layer's file capabilities (<see cref="SetCapabilities"/>), with or without ranges.
/// </summary>
/// <param name="ranges">The caller's subordinate ranges.</param>
/// <param name="agentPath">The agent binary, which is also the tool.</param>
internal sealed class LayerOwners(SubordinateIds ranges, string agentPath)
{
    private static readonly Lazy<LayerOwners?> s_thisProcess = new(() =>
        !Credentials.IsRoot && SubordinateIds.ForThisProcess().Ids is { } ranges ? new LayerOwners(ranges, AgentLocator.Find()) : null);

    /// <summary>This process's: null as root (owners are set directly) and rootless without ranges (every file stays the caller's).</summary>
    public static LayerOwners? ForThisProcess => s_thisProcess.Value;

    private string AgentPath => agentPath;

    /// <summary>Whether files the caller writes already have owner <paramref name="uid"/>:<paramref name="gid"/> inside (root's: nothing to chown).</summary>
    public static bool IsCaller(int uid, int gid) => uid == 0 && gid == 0;

    /// <summary>Whether <paramref name="uid"/>:<paramref name="gid"/> are the caller's own host ids (a tar made on the host by the caller: "mine").</summary>
    public static bool IsHostCaller(int uid, int gid) => uid == Credentials.EffectiveUid && gid == Credentials.EffectiveGid;

    /// <summary>The ranges' key: a store keeps the layers unpacked for other ranges (or none) apart.</summary>
    public string Key => ranges.Key;

    /// <summary>Gives <paramref name="owners"/> (paths relative to <paramref name="root"/>, resolved inside it) their owners, and their modes again.</summary>
    /// <exception cref="LayerFormatException">The tool refused (a path, or the maps); its words are in the message.</exception>
    public void Own(string root, IReadOnlyCollection<LayerOwner> owners)
    {
        if (owners.Count == 0)
        {
            return;
        }

        var records = new StringBuilder();
        foreach (var o in owners)
        {
            records.Append(CultureInfo.InvariantCulture, $"{o.Uid}\0{o.Gid}\0{(o.Mode is { } m ? Convert.ToString(m, 8) : "-")}\0{o.Path}\0");
        }

        if (Run(agentPath, "own", MapArguments, root, Encoding.UTF8.GetBytes(records.ToString())) is { } failed)
        {
            throw new LayerFormatException($"cannot give the layer's files their owners under the subordinate ids ({ranges.NewUidMap}): {failed}");
        }
    }

    /// <summary>Makes every file under <paramref name="path"/> the caller's again (directories u+rwx), so the caller can remove the tree.</summary>
    /// <exception cref="IOException">The tool refused; its words are in the message.</exception>
    public void Disown(string path)
    {
        if (Run(agentPath, "disown", MapArguments, path, []) is { } failed)
        {
            throw new IOException($"cannot take '{path}' back from the subordinate ids before removing it: {failed}");
        }
    }

    /// <summary>
    /// Writes <paramref name="capabilities"/> (security.capability values by path relative to <paramref name="root"/>,
    /// resolved inside it) rootless, where only a process holding CAP_SETFCAP in a user namespace may: the tool writes
    /// them from one whose 0 is the caller (<paramref name="owners"/>' maps with ranges, the caller alone without), so
    /// the kernel stores them as v3 capabilities rooted at the caller, in force in every container that maps the caller
    /// to 0. Call it after <see cref="Own"/>: a chown clears file capabilities.
    /// </summary>
    /// <exception cref="LayerFormatException">The tool refused; its words are in the message.</exception>
    public static void SetCapabilities(LayerOwners? owners, string root, IReadOnlyDictionary<string, byte[]> capabilities)
    {
        if (capabilities.Count == 0)
        {
            return;
        }

        var records = new StringBuilder();
        foreach (var (path, value) in capabilities)
        {
            records.Append(Convert.ToHexString(value)).Append('\0').Append(path).Append('\0');
        }

        var agent = owners?.AgentPath ?? AgentLocator.Find();
        string[] maps = owners?.MapArguments ?? ["-", "-", "-", "-"];
        if (Run(agent, "setcap", maps, root, Encoding.UTF8.GetBytes(records.ToString())) is { } failed)
        {
            throw new LayerFormatException($"cannot write the layer's file capabilities (security.capability) from a user namespace: {failed}");
        }
    }

    private string[] MapArguments =>
        [ranges.NewUidMap, ranges.NewGidMap, ranges.UidMap(0, Credentials.EffectiveUid), ranges.GidMap(0, Credentials.EffectiveGid)];

    /// <summary>Runs the tool; null on success, else what it said.</summary>
    private static string? Run(string agentPath, string verb, string[] maps, string path, byte[] input)
    {
        var start = new ProcessStartInfo(agentPath)
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { verb }.Concat(maps).Append(path))
        {
            start.ArgumentList.Add(argument);
        }

        using var tool = System.Diagnostics.Process.Start(start) ?? throw new IOException($"cannot start {agentPath}");
        var stderr = tool.StandardError.ReadToEndAsync();
        var stdout = tool.StandardOutput.ReadToEndAsync();
        tool.StandardInput.BaseStream.Write(input);
        tool.StandardInput.Close();
        tool.WaitForExit();
        var said = (stderr.GetAwaiter().GetResult() + stdout.GetAwaiter().GetResult()).Trim();
        return tool.ExitCode == 0 ? null : $"{said} (exit code {tool.ExitCode})";
    }
}

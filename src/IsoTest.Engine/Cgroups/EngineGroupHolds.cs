using System.Collections.Concurrent;

namespace IsoTest.Engine.Cgroups;

/// <summary>
/// This engine's holds on its engine groups (one per hierarchy; see <see cref="CgroupTree.CreateHeld"/>): taken
/// when a group is made, dropped when it is removed. While one is held, no other engine's sweep removes the group,
/// even when no process is in it; the kernel drops the holds of an engine that dies.
/// </summary>
internal sealed class EngineGroupHolds(ICgroupFileSystem fs)
{
    private readonly ConcurrentDictionary<string, IDisposable> _holds = new(StringComparer.Ordinal);

    /// <summary>Makes and holds <paramref name="dir"/> unless held already; adds it to <paramref name="made"/> when made here.</summary>
    public FsResult Ensure(string dir, List<string> made)
    {
        if (_holds.ContainsKey(dir))
        {
            if (fs.Exists(dir))
            {
                return FsResult.Ok;
            }

            Release(dir); // removed under us after all (by hand): a hold on a removed directory protects nothing
        }

        var (error, hold, madeHere) = CgroupTree.CreateHeld(fs, dir);
        if (madeHere)
        {
            made.Add(dir);
        }

        if (hold is not null && !_holds.TryAdd(dir, hold))
        {
            hold.Dispose(); // a concurrent create in this engine holds it already
        }

        return error;
    }

    /// <summary>Drops the hold on a group that was removed (or is left to the sweeps).</summary>
    public void Release(string dir)
    {
        if (_holds.TryRemove(dir, out var hold))
        {
            hold.Dispose();
        }
    }
}

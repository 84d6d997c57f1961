using System.Globalization;
using System.Text;

namespace IsoTest.Engine.Containers;

/// <summary>
/// Warm sandboxes: for each container shape the engine has started (root filesystem, mounts, caps,
/// user, network — everything the init agent sets up before `created`), one more is kept ready in the
/// background. The next container of that shape skips the ~2–3 ms of namespace, mount and cgroup work
/// on its critical path and only receives its command (DESIGN.md measured 1.3–1.7 ms per payload from a
/// pre-created sandbox). Tests mostly start the same few shapes again and again, so this is the common case.
/// </summary>
internal sealed class SandboxPool
{
    // Each idle sandbox holds ~1 MiB of kernel memory and two processes: keep a few shapes, not all.
    private const int MaxShapes = 8;
    private readonly EngineBackend _engine;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, EngineContainer> _ready = [];
    private readonly Dictionary<string, Task> _filling = [];
    private bool _disposed;

    public SandboxPool(EngineBackend engine) => _engine = engine;

    /// <summary>
    /// What the agent sets up for <paramref name="spec"/>, as a key; null when the spec cannot come from the
    /// pool (files to copy in are content, which a key would have to hash: those start cold).
    /// </summary>
    public static string? ShapeOf(ContainerSpec spec)
    {
        if (spec.Files.Count > 0)
        {
            return null;
        }

        var key = new StringBuilder()
            .Append(spec.RootFileSystem).Append('\0')
            .Append(spec.ReadOnlyRootFileSystem).Append('\0')
            .Append(spec.Network).Append('\0')
            .Append(spec.Hostname).Append('\0')
            .Append(spec.User).Append('\0')
            .Append(spec.Limits.MemoryBytes).Append('\0')
            .Append(spec.Limits.Cpus?.ToString("R", CultureInfo.InvariantCulture)).Append('\0')
            .Append(spec.Limits.Pids).Append('\0')
            .Append(spec.Limits.CpusetCpus);
        foreach (var mount in spec.Mounts)
        {
            key.Append('\0').Append(mount);
        }

        return key.ToString();
    }

    /// <summary>A ready sandbox of this shape, or null.</summary>
    public EngineContainer? TryTake(string shape)
    {
        lock (_lock)
        {
            return _ready.Remove(shape, out var container) ? container : null;
        }
    }

    /// <summary>Starts making a sandbox of this shape in the background, unless one is ready or on its way.</summary>
    public void Refill(string shape, ContainerSpec spec)
    {
        lock (_lock)
        {
            if (_disposed || _ready.ContainsKey(shape) || _filling.ContainsKey(shape) ||
                (_ready.Count + _filling.Count >= MaxShapes))
            {
                return;
            }

            _filling[shape] = Task.Run(() => FillAsync(shape, spec));
        }
    }

    private async Task FillAsync(string shape, ContainerSpec spec)
    {
        EngineContainer? container = null;
        try
        {
            container = EngineContainer.Prepare(_engine, spec);
            await container.CreateAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IsoTestException or IOException or InvalidOperationException or Native.NativeException)
        {
            // The same spec started cold a moment ago; whatever failed now will fail the next cold start
            // too, with its error shown there. The pool just stays empty for this shape.
            container = null;
        }

        lock (_lock)
        {
            _filling.Remove(shape);
            if (container is not null && !_disposed)
            {
                _ready[shape] = container;
                return;
            }
        }

        if (container is not null)
        {
            await container.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Removes every idle sandbox, after the ones being made are done.</summary>
    public async Task DisposeAsync()
    {
        Task[] filling;
        lock (_lock)
        {
            _disposed = true;
            filling = [.. _filling.Values];
        }

        await Task.WhenAll(filling).ConfigureAwait(false);
        EngineContainer[] idle;
        lock (_lock)
        {
            idle = [.. _ready.Values];
            _ready.Clear();
        }

        await Task.WhenAll(idle.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
    }
}

namespace IsoTest;

/// <summary>How <c>services.AddIsoTest(...)</c> wires IsoTest.</summary>
public sealed class IsoTestOptions
{
    /// <summary>Which backend to create; null means what <c>ISOTEST_BACKEND</c> says (auto when unset).</summary>
    public BackendKind? Backend { get; set; }

    /// <summary>
    /// Creates the backend instead (wins over <see cref="Backend"/>). The service provider owns what it
    /// returns and disposes it with itself.
    /// </summary>
    public Func<IServiceProvider, IContainerBackend>? BackendFactory { get; set; }

    /// <summary>The clock readiness waits use; null means a <see cref="System.TimeProvider"/> registered in the container, else the system clock.</summary>
    public TimeProvider? TimeProvider { get; set; }
}

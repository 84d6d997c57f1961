namespace IsoTest.Engine.Tests.Support;

/// <summary>
/// An empty subuid/subgid file for an engine that must run rootless without subordinate ranges whatever the machine
/// has (<c>new EngineBackend(null, null, null, null, ids.Files)</c>); deleted at dispose.
/// </summary>
internal sealed class NoSubordinateIds : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"isotest-subid-none-{Guid.NewGuid():N}");

    public NoSubordinateIds() => File.WriteAllText(Path, "");

    /// <summary>The engine's subordinateIdFiles argument: this empty file for both.</summary>
    public (string SubUid, string SubGid) Files => (Path, Path);

    public void Dispose() => File.Delete(Path);
}

global using IsoTest;
global using IsoTest.Xunit;
global using Xunit;

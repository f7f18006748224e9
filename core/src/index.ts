import 'reflect-metadata';
export * from './kernel';
export * from './ptrace';
export * from './images';
export * from './objects/shared-objects';
export * from './task';
export * from './engine';
export * from './tcp-repair';
